"""A plan as `svpn plan` prints it: text for people, or JSON-ready data (`--json`).

Imports svpn.planning's numbers, defaults and model.
"""

from __future__ import annotations

import math
from typing import Any

from svpn.planning.defaults import PROFILES
from svpn.planning.model import Plan
from svpn.planning.numbers import fmt, fmt_users


def plan_data(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data (`svpn plan --json`)."""
    inp = plan.input
    return {
        "svpn_version": plan.version,
        "input_sha256": plan.input_hash,
        "input": inp.values(),
        "limit_sources": dict(inp.limit_sources),
        "concurrent_users": plan.sizing.concurrent,
        "limits": [
            {
                "limit": result.key,
                "users_per_node": math.floor(result.users_per_node),
                "nodes": result.nodes,
                "how": result.how,
                "source": result.source,
            }
            for result in plan.sizing.limits
        ],
        "binding": plan.sizing.binding,
        "base_nodes": plan.sizing.base_nodes,
        "spares": plan.sizing.spares,
        "node_count": plan.node_count,
        "reason": plan.sizing.reason,
        "pools": {
            "failed_nodes_covered": plan.pools.failed,
            "failover_share_users": plan.pools.share,
            "addresses_needed": plan.pools.needed,
            "prefix": plan.pools.prefix,
            "reason": plan.pools.reason,
        },
        "buckets": plan.buckets,
        "buckets_per_node": plan.bucket_counts,
        "concentrators": [
            {
                "name": node.name,
                "existing": node.existing,
                "pool": str(node.pool),
                "pool_addresses": node.pool_addresses,
                "inside": str(node.inside),
                "internal": str(node.internal),
                "tuning": vars(node.tuning).copy(),
            }
            for node in plan.concentrators
        ],
        "loadbalancers": [
            {"name": lb.name, "public": str(lb.public), "inside": str(lb.inside)} for lb in plan.loadbalancers
        ],
    }


def plan_text(plan: Plan) -> str:
    """The plan for people (`svpn plan` without --json)."""
    inp, sizing = plan.input, plan.sizing
    profile = PROFILES[inp.profile]
    lines = [
        f"Plan for {inp.vpn_name}: {inp.users:,} users, peak {fmt(inp.concurrency_percent)} % = "
        f"{sizing.concurrent:,} concurrent, profile {profile.name} ({fmt(profile.mbps_per_user)} Mbps each)",
        f"Node size: {inp.cores} cores, {fmt(inp.nic_gbps)} Gbps NIC, {fmt(inp.memory_gib)} GiB; "
        f"redundancy {inp.redundancy}, headroom {fmt(inp.headroom_percent)} %",
        "",
        "Per-node limits (users per node -> nodes for the peak + headroom):",
    ]
    width = max(len(result.title) for result in sizing.limits)
    for result in sizing.limits:
        mark = "  <- binds" if result.key == sizing.binding else ""
        lines.append(
            f"  {result.title:<{width}}  {fmt_users(result.users_per_node):>10}  -> {result.nodes:>3}{mark}"
        )
        lines.append(f"  {'':<{width}}  {result.how}")
    lines += [
        "",
        f"Nodes: {plan.node_count} ({sizing.reason})",
        f"Pools: /{plan.pools.prefix} per new node from {inp.supernet} ({plan.pools.reason})",
        f"LB buckets: {plan.buckets}; "
        + ", ".join(f"{name} {count}" for name, count in plan.bucket_counts.items()),
        "",
        "Concentrators:",
    ]
    for node in plan.concentrators:
        tuning = node.tuning
        lines.append(
            f"  {node.name:<7} pool {node.pool!s:<18} inside {node.inside!s:<15} internal "
            f"{node.internal!s:<15} "
            f"threads {tuning.threads}, ikesa_table {tuning.ikesa_table_size}/{tuning.ikesa_table_segments}, "
            f"half-open {tuning.init_limit_half_open}/{tuning.cookie_threshold}/{tuning.block_threshold}"
            + ("  (existing)" if node.existing else "")
        )
    lines.append("Load balancers:")
    for lb in plan.loadbalancers:
        lines.append(f"  {lb.name:<7} public {lb.public!s:<15} inside {lb.inside}")
    lines.append(f"VIP: {inp.vip} ({inp.vpn_name}); inside VIP: {inp.inside_vip}")
    return "\n".join(lines) + "\n"
