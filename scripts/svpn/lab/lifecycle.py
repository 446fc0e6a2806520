"""Bring the lab up and down: docker networks and systemd container hosts for a lab inventory (I/O)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from svpn.access.pki.ca import load_ca
from svpn.access.pki.ca_setup import add_ca_policy, ca_allows_user_policy, init_ca
from svpn.access.pki.pkidir import PkiDir, locked
from svpn.access.pki.validation import read_passphrase_file
from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write
from svpn.core.paths import repo_root
from svpn.lab import host as labhost
from svpn.lab.image import ensure_image, lab_images
from svpn.lab.topo import NETWORK_PREFIX, Lab, LabHost

LABEL = "svpn-lab"
Log = Callable[[str], None]


def lab_state_dir() -> Path:
    return repo_root() / ".lab"


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SvpnError(f"docker {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done


def prepare_machine(log: Log = print) -> list[str]:
    """A running engine, the base images (one per lab suite, the default first) and the forwarding rule:
    what every lab and scenario needs."""
    labhost.ensure_dockerd(lab_state_dir() / "dockerd.log", log=log)
    labhost.ensure_inotify_limits(log)
    images = [ensure_image(spec, log=log) for spec in lab_images()]
    if labhost.add_forward_rule():
        log(f"added iptables DOCKER-USER accept rule for {labhost.TEST_RANGE}")
    return images


def _create_network(lab: Lab, name: str) -> None:
    net = lab.networks[name]
    if _docker("network", "inspect", net.docker_name, check=False).returncode == 0:
        return
    _docker(
        "network", "create", "--internal", "--driver", "bridge", "--label", LABEL,
        "--subnet", str(net.subnet), net.docker_name,
    )  # fmt: skip


def _create_host(lab: Lab, host: LabHost, image: str) -> None:
    if _docker("container", "inspect", host.container, check=False).returncode == 0:
        return
    nets = list(host.addresses.items())
    first_net, first_ip = nets[0]
    args = [
        "run", "--detach", "--name", host.container, "--hostname", host.name, "--label", LABEL,
        "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW", "--device", "/dev/net/tun",
        "--tmpfs", "/run", "--tmpfs", "/run/lock", "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
        "--network", lab.networks[first_net].docker_name, "--ip", str(first_ip),
    ]  # fmt: skip
    if host.forwards:
        args += ["--sysctl", "net.ipv4.ip_forward=1"]
    _docker(*args, image, "/lib/systemd/systemd")
    for net, ip in nets[1:]:
        _docker("network", "connect", "--ip", str(ip), lab.networks[net].docker_name, host.container)


def _wait_booted(host: LabHost, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = _docker("exec", host.container, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(0.5)
    raise SvpnError(f"host {host.name}: systemd did not finish booting in {timeout:.0f} s (state {state!r})")


def ensure_lab_pki(log: Log = print) -> tuple[Path, Path]:
    """The lab's own CA (never the operator's pki/), its passphrase in a file beside it."""
    state = lab_state_dir()
    pki_dir = state / "pki"
    passphrase_file = state / "ca-passphrase"
    if not passphrase_file.exists():
        atomic_write(passphrase_file, secrets.token_urlsafe(32) + "\n", 0o600, overwrite=False)
    if not (pki_dir / "ca" / "ca.crt").exists():
        passphrase = read_passphrase_file(passphrase_file)
        init_ca(pki_dir, "SVPN lab CA", passphrase)
        log(f"created the lab CA in {pki_dir}")
    elif not ca_allows_user_policy(PkiDir(pki_dir)):
        # A lab CA made before the user certificate policy: the concentrators now require it along the chain.
        ca = load_ca(pki_dir, read_passphrase_file(passphrase_file))
        with locked(pki_dir):
            add_ca_policy(pki_dir, ca)
        log(f"the lab CA in {pki_dir} now carries the user certificate policy (svpn pki ca-policy)")
    return pki_dir, passphrase_file


def run_playbook(inventory: Path, playbook: str, log: Log = print) -> None:
    root = repo_root()
    bindir = Path(sys.executable).parent
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
        "PATH": f"{bindir}:{os.environ['PATH']}",
    }
    log(f"ansible-playbook -i {inventory} playbooks/{playbook}")
    done = subprocess.run(
        [str(bindir / "ansible-playbook"), "-i", str(inventory), str(root / "playbooks" / playbook)],
        env=env,
        cwd=root,
    )
    if done.returncode != 0:
        raise SvpnError(f"playbooks/{playbook} failed against {inventory} (exit {done.returncode})")


def up(lab: Lab, log: Log = print) -> None:
    image = prepare_machine(log)[0]
    for name in lab.networks:
        _create_network(lab, name)
    for host in lab.hosts:
        _create_host(lab, host, image)
    for host in lab.hosts:
        _wait_booted(host)
    log(f"{len(lab.hosts)} hosts up on {len(lab.networks)} networks")
    ensure_lab_pki(log)


def down(log: Log = print) -> None:
    """Remove every container and network the lab made, and the forwarding rule."""
    if not labhost.docker_running():
        labhost.remove_forward_rule(log)
        log("docker is not running: no lab containers or networks can exist")
        return
    containers = _docker("ps", "-aq", "--filter", f"label={LABEL}").stdout.split()
    if containers:
        _docker("rm", "--force", "--volumes", *containers)
    networks = _docker("network", "ls", "-q", "--filter", f"label={LABEL}").stdout.split()
    if networks:
        _docker("network", "rm", *networks)
    removed_rule = labhost.remove_forward_rule(log)
    log(
        f"removed {len(containers)} containers, {len(networks)} networks"
        + (f", the DOCKER-USER rule for {labhost.TEST_RANGE}" if removed_rule else "")
        + f" (prefix {NETWORK_PREFIX})"
    )
