"""The lab's own clients during a load test: their tunnels before and after, and traffic through them.

The simulated users carry no ESP; the lab's own clients (group lab_clients) do, so a sample of their
traffic to the lab app while the load is up tells whether real users still get through. Node restarts and
a storm may leave one of them down, so the run brings back those that were up before it. Imports svpn.lab
and svpn.core.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from typing import Any

from vici.exception import SessionException

from svpn.core.errors import SvpnError
from svpn.core.ping import ping_summary
from svpn.lab import status as labstatus
from svpn.lab.topo import Lab
from svpn.loadtest.undo import Log

SAMPLE_PINGS = 20  # per lab client, 0.2 s apart: 4 s, all clients at once


def clients_up(lab: Lab) -> set[str]:
    """The lab's own clients (group lab_clients) that have their tunnel up."""
    up = set()
    for client in lab.group("lab_clients"):
        with contextlib.suppress(SvpnError, OSError, SessionException):
            sas = labstatus.list_sas(client.container, ike=labstatus.LAB_CONNECTION)
            if any(sa.get("state") == "ESTABLISHED" and sa.get("children") for sa in sas):
                up.add(client.name)
    return up


def restore_lab_clients(lab: Lab, before: set[str], log: Log, timeout: float = 60) -> list[str]:
    """Bring back the lab's own clients that were up before the run (node restarts and a storm may have
    left one that gave up, e.g. after too many COOKIE rounds); returns those still down."""
    missing = before - clients_up(lab)
    by_name = {c.name: c for c in lab.group("lab_clients")}
    for name in sorted(missing):
        subprocess.Popen(
            [
                "docker",
                "exec",
                by_name[name].container,
                "swanctl",
                "--initiate",
                "--child",
                "svpn",
                "--timeout",
                "30",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + timeout
    while missing and time.monotonic() < deadline:
        time.sleep(2)
        missing = before - clients_up(lab)
    if before:
        log(f"lab clients up again: {len(before) - len(missing)} of {len(before)}")
    return sorted(missing)


def sample_traffic(lab: Lab, log: Log) -> dict[str, dict[str, Any]]:
    """Traffic through the lab's own clients' tunnels while the load is up (they carry ESP; the simulated
    users do not): does the app answer each client's virtual IP, and ping loss and round-trip times."""
    apps = lab.group("lab_apps")
    if not apps:
        log("traffic sample skipped: no host in group lab_apps")
        return {}
    app = str(apps[0].addresses["internal"])
    rows = {
        row.host: row for row in labstatus.client_statuses(lab, f"http://{app}/") if row.virtual_ip != "-"
    }
    by_name = {c.name: c for c in lab.group("lab_clients")}
    ping = ["ping", "-q", "-n", "-c", str(SAMPLE_PINGS), "-i", "0.2", "-W", "2", app]
    pings = {
        name: subprocess.Popen(
            ["docker", "exec", by_name[name].container, *ping],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in rows
    }
    sample = {}
    for name, proc in pings.items():
        out, _ = proc.communicate(timeout=SAMPLE_PINGS * 0.2 + 30)
        sample[name] = {
            "virtual_ip": rows[name].virtual_ip,
            "node": rows[name].node,
            "through_tunnel": rows[name].app_reachable,
            **ping_summary(out),
        }
    return sample
