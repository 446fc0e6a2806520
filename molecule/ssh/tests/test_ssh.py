"""The SSH-managed farm: the admin's way in works and nothing else does, and the converged farm is what
site.yml describes (`--check --diff` reports no change). Commands on the farm's hosts run the way an admin
runs them: ssh with the scenario's key and known_hosts, then sudo."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

from svpn_testing.scenario import ScenarioHosts

from svpn.farm.sas import remote_vips
from svpn.lab.recap import parse_recap

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
REPORT = ROOT / ".lab" / "reports" / "ssh.json"
APP = "198.18.52.20"
FARM = {"ssh-conc1": "198.18.54.11", "ssh-lb1": "198.18.54.12"}
OUTSIDER = "ssh-app1"  # 198.18.54.40: on the management LAN, outside svpn_management_networks (…0/28)
KEY = EPHEMERAL / "admin_ed25519"
KNOWN_HOSTS = EPHEMERAL / "known_hosts"

testinfra_hosts = [f"ansible://{OUTSIDER}"]
LAB = ScenarioHosts(INVENTORY, REPORT, APP)


def ssh(address: str, command: str, known_hosts: Path = KNOWN_HOSTS) -> subprocess.CompletedProcess[str]:
    """The admin's own login: key, host key checked against *known_hosts*, no password prompts."""
    return subprocess.run(
        ["ssh", "-i", str(KEY), "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
         "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ControlMaster=no",
         f"svpnadmin@{address}", command],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def ansible(args: list[str], extra_vars: dict[str, object] | None = None) -> subprocess.CompletedProcess[str]:
    """ansible / ansible-playbook on the scenario's inventory with molecule's ansible.cfg, as an operator."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(EPHEMERAL / "ansible.cfg"),
        "ANSIBLE_VAULT_PASSWORD_FILE": str(SCENARIO / "vault-password"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",  # molecule's own environment forces colour
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",  # messages on one line, not folded
    }
    extra = ["-e", json.dumps(extra_vars)] if extra_vars else []
    return subprocess.run(
        [args[0], "-i", INVENTORY, *args[1:], *extra],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=900, check=False,
    )  # fmt: skip


def test_the_admin_logs_in_with_the_key_and_becomes_root_with_sudo() -> None:
    for host, address in FARM.items():
        done = ssh(address, "id -un; sudo -n id -un")
        assert done.returncode == 0, f"{host}: {done.stderr}"
        assert done.stdout.split() == ["svpnadmin", "root"], host


def _unreachable(done: subprocess.CompletedProcess[str]) -> bool:
    return done.returncode != 0 and "Host key verification failed" in done.stdout + done.stderr


def test_an_unknown_or_changed_host_key_is_refused(tmp_path: Path) -> None:
    """A man in the middle answers with another key: ssh and Ansible (host_key_checking on, as in the
    project's ansible.cfg) refuse it, and refuse a host that is not in known_hosts at all."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "forged")], check=True
    )
    forged = (tmp_path / "forged.pub").read_text().split()[:2]
    changed = tmp_path / "changed_known_hosts"
    changed.write_text("".join(f"{address} {' '.join(forged)}\n" for address in FARM.values()))
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    for host, address in FARM.items():
        assert _unreachable(ssh(address, "true", known_hosts=changed)), host
    for known_hosts in (changed, empty):
        # no shared master connection (it was checked once already): each login checks the host key
        args = {
            "ansible_ssh_args": "-o ControlMaster=no",
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={known_hosts}",
        }
        done = ansible(["ansible", "ssh_managed", "-m", "ansible.builtin.ping"], args)
        assert _unreachable(done), done.stdout[-2000:]
        assert done.stdout.count("UNREACHABLE!") == len(FARM), done.stdout[-2000:]


def _tcp_open(where: list[str], address: str) -> bool:
    return (
        subprocess.run(
            [*where, "timeout", "5", "bash", "-c", f"</dev/tcp/{address}/22"], check=False
        ).returncode
        == 0
    )


def test_ssh_from_outside_the_management_networks_is_dropped() -> None:
    """The farm's firewalls accept SSH from the controller (198.18.54.1, inside 198.18.54.0/28) and drop
    it from a host on the same LAN outside it."""
    for host, address in FARM.items():
        with socket.create_connection((address, 22), timeout=5) as sock:
            assert sock.recv(64).startswith(b"SSH-2.0-"), host
        assert not _tcp_open(["docker", "exec", OUTSIDER], address), f"{host} accepts SSH from {OUTSIDER}"


def test_the_live_check_refuses_a_controller_outside_the_management_networks() -> None:
    outside = {"svpn_management_networks": ["198.18.54.32/28"]}
    done = ansible(["ansible-playbook", str(ROOT / "playbooks" / "check.yml")], outside)
    assert done.returncode != 0, done.stdout[-3000:]
    output = done.stdout + done.stderr  # ansible-core 2.19 writes failures to stderr
    said = [" ".join(line.split()) for line in output.splitlines() if "arrives from" in line]
    assert said, output[-3000:]
    for line in said:  # the controller's address as the hosts see it, and the networks it is outside of
        assert (
            "the controller's SSH arrives from 198.18.54.1, outside " in line and "(198.18.54.32/28)" in line
        ), line
    assert ssh(FARM["ssh-conc1"], "true").returncode == 0  # refused before anything changed


def test_check_diff_on_the_converged_farm_reports_no_change() -> None:
    started = time.monotonic()
    done = ansible(["ansible-playbook", str(ROOT / "playbooks" / "site.yml"), "--check", "--diff"])
    LAB.record("ssh_site_check_diff_seconds", round(time.monotonic() - started, 1))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    recap = parse_recap(done.stdout)
    assert set(FARM) <= set(recap), recap
    for host, counts in recap.items():
        assert counts["changed"] == 0 and counts["failed"] == 0 and counts["unreachable"] == 0, (host, counts)


def test_a_client_tunnels_through_the_ssh_managed_farm() -> None:
    """With the user's own bundle: a virtual IP, the app reached through the tunnel, and the SSH-managed
    node (asked over SSH, as an admin would) holding that user's SA."""
    deadline = time.monotonic() + 90
    while True:
        vip, _sa = LAB.client_sa("ssh-client1")
        held = ssh(FARM["ssh-conc1"], "sudo -n swanctl --list-sas --ike svpn").stdout if vip else ""
        if vip and vip in remote_vips(held) and LAB.reaches_app("ssh-client1", vip):
            return
        assert time.monotonic() < deadline, f"ssh-client1 not through within 90 s (vip {vip!r})"
        time.sleep(2)


def test_the_helpdesk_reads_the_ssh_managed_farm_as_an_admin_would() -> None:
    """svpn status, whereis and explain through Ansible's SSH connection with become (swanctl needs root),
    the vault-encrypted inventory read with the vault password: the production path."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(EPHEMERAL / "ansible.cfg"),
        "ANSIBLE_VAULT_PASSWORD_FILE": str(SCENARIO / "vault-password"),
    }
    where = ["--inventory", str(EPHEMERAL / "inventory"), "--json"]

    def svpn(*args: str) -> dict[str, object]:
        done = subprocess.run(
            ["svpn", *args, *where],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
            check=False,
        )
        assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]
        return json.loads(done.stdout)

    vip, _sa = LAB.client_sa("ssh-client1")
    assert vip, "ssh-client1 has no tunnel"
    status = svpn("status")
    nodes = {n["name"]: (n["state"], n["users"]) for n in status["nodes"]}  # type: ignore[index]
    assert nodes == {"ssh-conc1": ("active", 1)}, status
    found = svpn("whereis", "alice")
    sessions = [(s["node"], s["virtual_ip"]) for s in found["sessions"]]  # type: ignore[index]
    assert sessions == [("ssh-conc1", vip)], found
    explained = svpn("explain", "alice@svpn.test")
    assert explained["findings"][0]["cause"] == "connected", explained  # type: ignore[index]
