"""The lab machine itself: a running docker engine and the one forwarding rule the lab needs (I/O)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from svpn.core.errors import SvpnError

TEST_RANGE = "198.18.0.0/15"
# docker's own default bridge is moved into the test range too (README.md, the lab's network rules); the
# project keeps this /24 free.
DOCKER_BRIDGE_IP = "198.19.255.1/24"
# Only *bridged* traffic (one lab network, a container to a container) is let past docker's isolation
# rules, which would drop it when its source is outside the bridge's subnet (a pool address, a client
# behind the LB). Traffic the machine would *route* between lab networks stays dropped, so no lab host
# can reach another network except through the farm itself (a tunnel, the LB).
FORWARD_RULE = ["-s", TEST_RANGE, "-d", TEST_RANGE, "-m", "physdev", "--physdev-is-bridged", "-j", "ACCEPT"]


def docker_running() -> bool:
    return subprocess.run(["docker", "info"], capture_output=True).returncode == 0


def ensure_dockerd(log_file: Path, wait_seconds: float = 60.0, log=print) -> None:
    """Start dockerd in the background when `docker info` fails, then wait for its socket."""
    if docker_running():
        return
    if shutil.which("dockerd") is None:
        raise SvpnError("dockerd is not installed: run `make bootstrap` (apt-get install docker.io)")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log(f"starting dockerd (log: {log_file})")
    with open(log_file, "ab") as out:
        subprocess.Popen(
            ["dockerd", "--bip", DOCKER_BRIDGE_IP],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if docker_running():
            return
        time.sleep(0.5)
    raise SvpnError(f"dockerd did not answer within {wait_seconds:.0f} s: see {log_file}")


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", *args], capture_output=True, text=True)


def forward_rule_present() -> bool:
    return _iptables("-C", "DOCKER-USER", *FORWARD_RULE).returncode == 0


def add_forward_rule() -> bool:
    """Let routed traffic inside the test range cross docker's isolation rules. True if added now."""
    if forward_rule_present():
        return False
    if _iptables("-L", "DOCKER-USER", "-n").returncode != 0:
        _iptables("-N", "DOCKER-USER")
    done = _iptables("-I", "DOCKER-USER", *FORWARD_RULE)
    if done.returncode != 0:
        raise SvpnError(f"could not add the DOCKER-USER rule for {TEST_RANGE}: {done.stderr.strip()}")
    return True


def _containers_running() -> int:
    done = subprocess.run(["docker", "ps", "-q"], capture_output=True, text=True)
    return len(done.stdout.split()) if done.returncode == 0 else 0


def remove_forward_rule(log=print) -> bool:
    """Remove every copy of the rule, unless containers still run (another scenario or the lab needs it).

    True if one was removed.
    """
    if running := _containers_running():
        if forward_rule_present():
            log(f"keeping the DOCKER-USER rule for {TEST_RANGE}: {running} containers still run")
        return False
    removed = False
    while forward_rule_present():
        _iptables("-D", "DOCKER-USER", *FORWARD_RULE)
        removed = True
    return removed


# Every systemd container holds a handful of inotify instances (systemd, journald, logind…). The kernel
# default of 128 per user runs out at about 15-20 containers, and the next container's systemd exits at
# once: the lab and its scenarios (up to 12 hosts each) need more.
INOTIFY_MINIMUMS = {"fs.inotify.max_user_instances": 8192, "fs.inotify.max_user_watches": 524288}


def ensure_inotify_limits(log=print) -> None:
    """Raise the host's inotify limits to at least INOTIFY_MINIMUMS (never lowers them)."""
    for key, minimum in INOTIFY_MINIMUMS.items():
        path = Path("/proc/sys") / key.replace(".", "/")
        current = int(path.read_text())
        if current < minimum:
            path.write_text(f"{minimum}\n")
            log(f"raised {key} from {current} to {minimum} (systemd containers need inotify instances)")
