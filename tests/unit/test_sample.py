"""inventories/sample, the copy-me production inventory, as Ansible sees it: hosts reached over SSH as an
unprivileged admin with sudo, the CA passphrase kept with ansible-vault, and site.yml's check passing.
The planner's files in it are held byte-identical to `svpn plan` by test_examples."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "inventories" / "sample"
VAULT_PASSWORD = Path(__file__).parent / "data" / "sample-vault-password"
BIN = Path(sys.executable).parent


def ansible(tool: str, *args: str, vault: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    env.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)
    if vault:
        env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(VAULT_PASSWORD)
    return subprocess.run(
        [str(BIN / tool), "-i", str(SAMPLE), *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip


def test_every_farm_host_is_reached_over_ssh_as_an_admin_with_sudo() -> None:
    done = ansible("ansible-inventory", "--list")
    assert done.returncode == 0, done.stderr
    inventory = json.loads(done.stdout)
    hostvars = inventory["_meta"]["hostvars"]
    planned = yaml.safe_load((SAMPLE / "hosts.yml").read_text())["all"]["children"]
    farm = [host for group in ("loadbalancers", "concentrators") for host in planned[group]["hosts"]]
    assert farm and sorted(inventory["svpn_farm"]["children"]) == ["concentrators", "loadbalancers"]
    addresses = set()
    for host in farm:
        hv = hostvars[host]
        assert hv.get("ansible_connection", "ssh") == "ssh", host
        assert hv["ansible_user"] == "svpnadmin" and hv["ansible_become"] is True, host
        assert hv["ansible_host"].startswith("198.18.73."), host
        assert hv["svpn_management_networks"] == ["198.18.73.0/24"], host
        addresses.add(hv["ansible_host"])
    assert len(addresses) == len(farm)  # one address per host


def test_the_ca_passphrase_is_kept_with_ansible_vault() -> None:
    assert "!vault |" in (SAMPLE / "operator.yml").read_text()
    args = ("localhost", "-m", "ansible.builtin.debug", "-a", "var=svpn_pki_passphrase")
    opened = ansible("ansible", *args)
    assert opened.returncode == 0 and "sample placeholder, replace me" in opened.stdout, opened.stdout
    closed = ansible("ansible", *args, vault=False)
    assert closed.returncode != 0 and "sample placeholder" not in closed.stdout
    assert "vault" in (closed.stdout + closed.stderr).lower()


def test_site_yml_first_play_accepts_the_sample() -> None:
    """check.yml's controller-side play (the live SSH play needs the real hosts: molecule/ssh runs it)."""
    done = ansible("ansible-playbook", str(ROOT / "playbooks" / "check.yml"), "--skip-tags", "ssh_session")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "failed=0" in done.stdout


def test_svpn_reads_the_sample_through_ansible_with_its_vault_password() -> None:
    """`svpn inventory check` sees what Ansible sees, operator.yml and its vaulted value included."""

    def check(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_VAULT")}
        return subprocess.run(
            [str(BIN / "svpn"), "inventory", "check", str(SAMPLE), *args],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip

    opened = check("--vault-password-file", str(VAULT_PASSWORD))
    assert opened.returncode == 0 and "OK (2 concentrators, 2 load balancers" in opened.stdout, opened.stderr
    closed = check()
    assert closed.returncode != 0 and "Traceback" not in closed.stderr
    assert "operator.yml" in closed.stderr and "svpn_pki_passphrase is vault-encrypted" in closed.stderr
