"""Reaching into the lab's containers from the host: docker, host PIDs and /proc, paths inside a container,
charon's vici socket. The plumbing every I/O step of `svpn loadtest` uses.

Charon is reached through each container's own vici socket seen from the host
(/proc/PID/root/run/charon.vici), the generators' load-tester through its control socket the same way.
Imports svpn.core and the pure /proc readers of svpn.loadtest.figures.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import vici

from svpn.core.errors import SvpnError
from svpn.loadtest.figures import machine_cpu, proc_cpu_seconds, proc_rss_kib

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def docker(*args: str, check: bool = True, timeout: float | None = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise SvpnError(f"docker {' '.join(args[:3])} failed: {done.stderr.strip()}")
    return done


def container_pid(container: str) -> int:
    done = docker("inspect", "-f", "{{.State.Running}} {{.State.Pid}}", container, check=False)
    running, _, pid = done.stdout.strip().partition(" ")
    if done.returncode != 0 or running != "true":
        raise SvpnError(f"container {container} is not running (`svpn lab up` starts the lab)")
    return int(pid)


def process_pid(container: str, command: str) -> int:
    """The host PID of *command* inside *container* (0 if it does not run)."""
    done = docker("top", container, "-eo", "pid,comm", check=False)
    for line in done.stdout.splitlines()[1:]:
        pid, _, comm = line.strip().partition(" ")
        if comm.strip() == command:
            return int(pid)
    return 0


def container_path(container: str, path: str) -> Path:
    """*path* inside *container*, as the host sees it (through the container's init process)."""
    return Path(f"/proc/{container_pid(container)}/root{path}")


def wait_for(path_fn: Callable[[], Path], what: str, timeout: float) -> None:
    """Until the path *path_fn* gives exists (a socket that appears once a daemon is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(SvpnError, OSError):
            if path_fn().exists():
                return
        time.sleep(0.2)
    raise SvpnError(f"{what} did not appear within {timeout:.0f} s")


def docker_network_of(container: str, subnet: IPv4Network) -> str:
    """The docker network through which *container* sits on *subnet* (lab and molecule name them apart)."""
    done = docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", container)
    for name, net in (json.loads(done.stdout) or {}).items():
        with contextlib.suppress(ValueError):
            if IPv4Address(net.get("IPAddress") or "0.0.0.0") in subnet:
                return name
    raise SvpnError(f"{container} is on no docker network with the subnet {subnet}")


@contextlib.contextmanager
def vici_session(container: str, timeout: float = 30.0) -> Iterator[vici.Session]:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(timeout)
    try:
        sock.connect(str(container_path(container, "/run/charon.vici")))
    except OSError as err:
        sock.close()
        raise SvpnError(f"{container}: cannot reach charon's vici socket: {err}") from None
    try:
        yield vici.Session(sock)
    finally:
        sock.close()


def vici_text(value: Any) -> str:
    """A value of a vici reply as text (vici gives bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def process_use(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS KiB) of a process; (0, 0) once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0, 0
    return proc_cpu_seconds(stat, CLOCK_TICKS), proc_rss_kib(status)


def machine_jiffies() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far."""
    return machine_cpu(Path("/proc/stat").read_text())
