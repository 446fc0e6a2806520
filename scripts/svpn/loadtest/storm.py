"""The reconnect storm: stop one node's strongSwan with its users up and time their return on the survivors.

The stopped node's users notice (DPD, retransmits) and reconnect through the LBs, which move its buckets to
the survivors. Its restart and the wait until the LBs see it again go on the undo stack before it is
stopped. Imports svpn.lab (the lab's hosts) and svpn.core.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from svpn.core.errors import SvpnError
from svpn.lab.topo import LabHost
from svpn.loadtest.figures import spread, storm_milestones
from svpn.loadtest.lbs import lb_views, wait_lbs_see_all_up
from svpn.loadtest.nodes import RunNode, loadtest_sas, node_counts, restart_node
from svpn.loadtest.undo import Log, ProgressFn, Undo


@dataclass
class _Return:
    """What the storm's watch saw: users back over time, when the LBs moved, when all were back."""

    timeline: list[list[float]] = field(default_factory=list)  # [seconds since the stop, users back]
    recovery_s: float | None = None
    lbs_moved_s: float | None = None
    exact: dict[str, int] = field(default_factory=dict)  # complete load-test SAs on each survivor


def storm(
    nodes: dict[str, RunNode],
    lbs: list[LabHost],
    storm_node: str | None,
    counts: dict[str, int],
    deadline: float,
    undo: Undo,
    progress: ProgressFn,
    log: Log,
) -> dict[str, Any]:
    """Stop one node's charon with its users up; time until every one of them is back on a survivor."""
    victim = storm_node or max(counts, key=lambda n: counts[n])
    if victim not in nodes:
        raise SvpnError(f"--storm-node: {victim!r} is not a concentrator of this lab ({', '.join(nodes)})")
    lost = counts[victim]
    total = sum(counts.values())
    survivors = [n for n in nodes.values() if n.name != victim]
    baseline = {n.name: node_counts(n.container, n.pool_names) for n in survivors}
    log(f"reconnect storm: stopping strongswan on {victim} with {lost} load-test users")
    start = _stop_strongswan(nodes[victim], lbs, list(nodes), undo, log)
    seen = _watch(victim, survivors, baseline, lbs, (lost, total), start, deadline, progress)
    exact = seen.exact
    if not exact or seen.recovery_s is None:
        exact = {n.name: loadtest_sas(n.container)[0] for n in survivors}
    return {
        "node": victim,
        "users_lost": lost,
        "users_back": max(sum(exact.values()) - (total - lost), 0),
        "recovery_s": seen.recovery_s,
        "lbs_moved_buckets_s": seen.lbs_moved_s,
        **storm_milestones(seen.timeline, lost),
        "survivors": exact,
        "spread_after": asdict(spread(exact)),
        "timeline": seen.timeline,
    }


def _stop_strongswan(node: RunNode, lbs: list[LabHost], names: list[str], undo: Undo, log: Log) -> float:
    """Stop the node's strongSwan, its restart on *undo* first; returns when the stop began (monotonic)."""
    container = node.container
    # (run in reverse: start it, then wait for the LBs)
    undo.push("wait until the LBs see every node again", lambda: wait_lbs_see_all_up(lbs, names, log))
    undo.push(f"{node.name}: start strongswan again", lambda: restart_node(container))
    start = time.monotonic()
    subprocess.Popen(
        ["docker", "exec", container, "systemctl", "stop", "strongswan"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return start


def _watch(
    victim: str,
    survivors: list[RunNode],
    baseline: dict[str, int],
    lbs: list[LabHost],
    users: tuple[int, int],
    start: float,
    deadline: float,
    progress: ProgressFn,
) -> _Return:
    """Follow the users' return on the survivors (cheap pool counts; exact SA counts once they add up)
    until all *users* (lost, total) are back or the time bound runs out."""
    lost, total = users
    seen = _Return()
    next_exact = 0.0
    while time.monotonic() < deadline:
        now = time.monotonic()
        back = sum(node_counts(n.container, n.pool_names) - baseline[n.name] for n in survivors)
        back = max(back, 0)
        seen.timeline.append([round(now - start, 2), back])
        if seen.lbs_moved_s is None and all(view.get(victim) is False for view in lb_views(lbs)):
            seen.lbs_moved_s = round(now - start, 2)
        progress("storm", min(back, lost), lost, min(back, lost), 0)
        if back >= lost and now >= next_exact:
            seen.exact = {n.name: loadtest_sas(n.container)[0] for n in survivors}
            if sum(seen.exact.values()) >= total:
                seen.recovery_s = round(now - start, 2)
                break
            next_exact = time.monotonic() + 2
        time.sleep(0.5)
    return seen
