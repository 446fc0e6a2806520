"""The end of a load test in words: the summary printed after a run and why a run does not pass. Pure logic.

Both read the report `svpn.loadtest.run` returns (the JSON `--json` writes carries the same figures).
Imports nothing of svpn outside svpn.loadtest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from svpn.loadtest.figures import SPREAD_LIMIT_PCT


def traffic_line(sample: Mapping[str, Mapping[str, Any]], users_up: int) -> str:
    """One summary line for the traffic sent through the lab clients' tunnels with the load up."""
    if not sample:
        return "traffic through a sample of tunnels: no lab client had a tunnel (skipped)"
    through = sum(1 for row in sample.values() if row.get("through_tunnel"))
    sent = sum(row["sent"] for row in sample.values())
    received = sum(row["received"] for row in sample.values())
    avgs = [row["rtt_avg_ms"] for row in sample.values() if row.get("rtt_avg_ms") is not None]
    maxes = [row["rtt_max_ms"] for row in sample.values() if row.get("rtt_max_ms") is not None]
    rtt = f"; rtt avg {sum(avgs) / len(avgs):.1f} ms, max {max(maxes):.1f} ms" if avgs else ""
    loss = (sent - received) / sent * 100 if sent else 100.0
    return (
        f"traffic with {users_up} users up: {through} of {len(sample)} lab clients reached the app through "
        f"their tunnel; ping {received}/{sent} answered ({loss:.1f} % loss){rtt}"
    )


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The human summary printed at the end of a run (the JSON carries the same figures)."""
    lines = []
    ramp = report["ramp"]
    up, users = ramp["up"], report["users"]
    when = ramp["time_to_all_up_s"]
    lines.append(
        f"users up: {up} of {users}"
        + (f" in {when:.1f} s" if when is not None else " (not all)")
        + f"; failures {ramp['failed']}; retransmits {ramp['retransmits']}"
    )
    for reason, count in ramp["failures"].items():
        lines.append(f"  failed: {count} x {reason}")
    spread_info = report["spread"]
    lines.append(
        f"spread: {spread_info['counts']} (mean {spread_info['mean']}, "
        f"max deviation {spread_info['max_deviation_pct']} %)"
    )
    lines.append(f"{'process':<14}{'users':>7}{'CPU s':>8}{'ms/setup':>10}{'RSS KiB/user':>14}")
    for kind in ("concentrators", "generators"):
        for name, row in report[kind].items():
            ms = row.get("cpu_ms_per_setup")
            rss = row.get("rss_kib_per_user")
            lines.append(
                f"{name:<14}{row['users']:>7}{row['cpu_s']:>8.1f}"
                f"{(f'{ms:.2f}' if ms is not None else '-'):>10}"
                f"{(f'{rss:.1f}' if rss is not None else '-'):>14}"
            )
    curve = report["ramp"].get("cost_curve") or []
    if curve:
        lines.append(
            "ms of CPU per setup as users accumulate (nodes / generators): "
            + ", ".join(
                f"{row['users_up']}: {row['nodes_ms_per_setup']}/{row['generators_ms_per_setup']}"
                for row in curve
            )
        )
    flaps = sum(1 for events in (report.get("lb_events") or {}).values() for e in events if ": DOWN:" in e)
    if flaps:
        lines.append(f"LB health checks marked a node down {flaps} times during the run (see lb_events)")
    machine = report.get("machine", {})
    if machine:
        lines.append(
            f"machine: {machine['cores']} cores, {machine['busy_pct']} % busy during the ramp; "
            f"generators used {machine['generator_share_pct']} % of the CPU the farm and generators used"
        )
    storm = report.get("storm")
    if storm:
        back = storm.get("recovery_s")
        lines.append(
            f"reconnect storm: {storm['node']} stopped with {storm['users_lost']} users; "
            + (f"all back on the survivors in {back:.1f} s" if back is not None else "not all came back")
            + f" ({storm['users_back']} back; LBs moved its buckets at {storm.get('lbs_moved_buckets_s')} s, "
            f"first back {storm.get('first_back_s')} s, half {storm.get('half_back_s')} s)"
        )
    during = report.get("during")
    if during:
        back = during.get("all_back_s")
        lines.append(
            f"during {during['command']!r}: exit {during['exit_code']} after {during['seconds']} s; users "
            f"{during['users_before']} before, fewest {during['users_lowest']}, {during['users_after']} after"
            + (f" (all back {back} s after it began)" if back is not None else " (not all back)")
            + (f"; restarted nodes reloaded: {during['reloaded']}" if during.get("reloaded") else "")
        )
    if "sample_traffic" in report:
        lines.append(traffic_line(report["sample_traffic"], report["ramp"]["up"]))
    if report.get("lab_clients_still_down"):
        lines.append(f"lab clients still down after the run: {', '.join(report['lab_clients_still_down'])}")
    cleanup = report.get("cleanup", {})
    if cleanup:
        lines.append(
            "cleanup: " + ("nothing of the load test remains" if cleanup.get("clean") else f"LEFT: {cleanup}")
        )
    return lines


def problems(report: Mapping[str, Any]) -> list[str]:
    """Why a run does not count as passed: users missing or failed, uneven spread, leftovers."""
    found = []
    ramp = report.get("ramp", {})
    users = report.get("users", 0)
    if ramp.get("up", 0) < users:
        found.append(f"{ramp.get('up', 0)} of {users} users up")
    if ramp.get("failed"):
        found.append(f"{ramp['failed']} failures ({', '.join(ramp.get('failures', {}))})")
    spread_info = report.get("spread", {})
    if spread_info and spread_info.get("max_deviation_pct", 0) > SPREAD_LIMIT_PCT:
        found.append(
            f"spread {spread_info['counts']} deviates {spread_info['max_deviation_pct']} % from the mean"
        )
    counted = sum((spread_info or {}).get("counts", {}).values())
    if spread_info and counted < users:
        found.append(f"the concentrators hold {counted} complete load-test SAs, not {users}")
    sample = report.get("sample_traffic") or {}
    blocked = [name for name, row in sample.items() if not row["through_tunnel"]]
    if blocked:
        found.append(f"lab clients with a tunnel that did not reach the app through it: {', '.join(blocked)}")
    storm = report.get("storm")
    if storm and storm.get("recovery_s") is None:
        found.append(
            f"reconnect storm: {storm.get('users_back')} of {storm.get('users_lost')} users came back"
        )
    found.extend(during_problems(report.get("during")))
    cleanup = report.get("cleanup", {})
    if not cleanup.get("clean", False):
        found.append(f"left behind: {cleanup.get('left')}")
    if report.get("cleanup_errors"):
        found.append(f"clean-up errors: {report['cleanup_errors']}")
    return found


def during_problems(during: Mapping[str, Any] | None) -> list[str]:
    """Why a --during run does not count as passed: the command failed, or users did not come back."""
    if not during:
        return []
    found = []
    if during.get("exit_code") != 0:
        found.append(f"--during command exited {during.get('exit_code')} (see {during.get('output')})")
    if during.get("users_after", 0) < during.get("users_before", 0):
        found.append(
            f"--during: {during.get('users_after')} of {during.get('users_before')} users back "
            "after the command"
        )
    if during.get("reload_errors"):
        found.append(f"--during: restarted nodes not reloaded: {during['reload_errors']}")
    return found
