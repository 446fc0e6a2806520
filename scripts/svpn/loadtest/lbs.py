"""The load balancers during a load test: routes back to the generators, what their health checkers see.

Each generator's block of source addresses is routed back to it on every LB for the run (and removed
through the undo stack); the health checkers' state file and journal tell when the LBs moved a node's
buckets. Imports svpn.lab (the lab's hosts) and svpn.core.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time

from svpn.core.errors import SvpnError
from svpn.lab.topo import LabHost
from svpn.loadtest.containers import container_path, docker
from svpn.loadtest.generators import GeneratorSpec
from svpn.loadtest.undo import Log, Undo


def lb_exec(lb: LabHost, *args: str) -> subprocess.CompletedProcess[str]:
    return docker("exec", lb.container, *args, check=False)


def route_sources(lbs: list[LabHost], specs: list[GeneratorSpec], undo: Undo) -> None:
    """Route each generator's source block to it on every LB; each route's removal goes on *undo*."""
    for lb in lbs:
        for spec in specs:
            route = [str(spec.source_block), "via", str(spec.public_address)]
            done = lb_exec(lb, "ip", "route", "replace", *route)
            if done.returncode != 0:
                raise SvpnError(f"{lb.name}: ip route replace {' '.join(route)}: {done.stderr.strip()}")
            undo.push(
                f"{lb.name}: remove the route to {spec.source_block}",
                lambda lb=lb, route=route: lb_exec(lb, "ip", "route", "del", *route),
            )


def lb_views(lbs: list[LabHost]) -> list[dict[str, bool]]:
    """Each LB's health checker's view: node name -> up ({} where the state cannot be read)."""
    views = []
    for lb in lbs:
        try:
            state = json.loads(container_path(lb.container, "/run/svpn-lb/state.json").read_text())
        except (OSError, ValueError, SvpnError):
            views.append({})
            continue
        views.append({node["name"]: bool(node.get("up")) for node in state.get("nodes", [])})
    return views


def lb_events(lbs: list[LabHost], since: dt.datetime) -> dict[str, list[str]]:
    """The LB health checkers' node state changes since *since* (a busy node may miss its probes)."""
    events = {}
    stamp = since.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    for lb in lbs:
        out = lb_exec(
            lb, "journalctl", "-u", "svpn-lb-health", "--no-pager", "-o", "cat", "--since", stamp
        ).stdout
        events[lb.name] = [line for line in out.splitlines() if ": DOWN:" in line or ": UP:" in line]
    return events


def wait_lbs_see_all_up(lbs: list[LabHost], names: list[str], log: Log, timeout: float = 60) -> None:
    """Until every LB's health checker has every node up (its buckets back), for 3 s in a row."""
    deadline = time.monotonic() + timeout
    steady_since = None
    while time.monotonic() < deadline:
        ok = all(all(view.get(name) for name in names) for view in lb_views(lbs))
        if ok:
            steady_since = steady_since or time.monotonic()
            if time.monotonic() - steady_since >= 3:
                return
        else:
            steady_since = None
        time.sleep(0.5)
    log(f"the LBs do not see every node up after {timeout:.0f} s: {lb_views(lbs)}")
