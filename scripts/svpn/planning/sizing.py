"""The capacity model: per-node limits (sessions, setup rate in a reconnect storm, ESP throughput,
memory), the node count they ask for plus the redundancy spares, each survivor's failover share and the
pool size that holds it.

Imports svpn.core.errors, svpn.farm (buckets, facts) and svpn.planning's numbers, defaults and model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from svpn.core.errors import SvpnError
from svpn.farm.buckets import DEFAULT_BUCKETS
from svpn.farm.facts import pool_leases
from svpn.planning.defaults import PROFILES, field_name
from svpn.planning.model import Concentrator, LimitResult, PlanInput, PoolSizing, Sizing
from svpn.planning.numbers import fmt, fmt_users, frac

# Model constants (not inputs): each is explained where it is used and in CAPACITY.md.
MEMORY_SHARE_FOR_CHARON = Fraction(1, 2)  # of a node's RAM; the rest is the OS, page cache, logs
POOL_PREFIX_MAX = 30  # the smallest pool: a /30 (2 client addresses)


def node_gbps(inp: PlanInput) -> Fraction:
    return min(inp.cores * frac(inp.esp_gbps_per_core), frac(inp.nic_gbps))


def per_node_limits(inp: PlanInput) -> list[tuple[str, str, Fraction, str, str]]:
    """(key, title, users per node, how, source) for each limit, in a fixed order."""
    profile = PROFILES[inp.profile]
    gbps = node_gbps(inp)
    setup_rate = inp.cores * frac(inp.setup_rate_per_core)
    memory_kib = frac(inp.memory_gib) * 1024 * 1024 * MEMORY_SHARE_FOR_CHARON
    return [
        (
            "sessions",
            "sessions (IKE SAs)",
            Fraction(inp.ike_sas_per_node),
            f"{inp.ike_sas_per_node:,} IKE SAs per node",
            inp.source("ike_sas_per_node"),
        ),
        (
            "setup_rate",
            "setup rate (reconnect storm)",
            setup_rate * inp.storm_seconds,
            f"{fmt(inp.setup_rate_per_core)}/s per core x {inp.cores} cores x {inp.storm_seconds} s: "
            "every connected user reconnects within the storm window (a failed LB or node)",
            inp.source("setup_rate_per_core"),
        ),
        (
            "throughput",
            "ESP throughput",
            gbps * 1000 / profile.mbps_per_user,
            f"min({inp.cores} cores x {fmt(inp.esp_gbps_per_core)} Gbps, {fmt(inp.nic_gbps)} Gbps NIC) = "
            f"{fmt(gbps)} Gbps / {fmt(profile.mbps_per_user)} Mbps per user ({profile.name})",
            inp.source("esp_gbps_per_core"),
        ),
        (
            "memory",
            "memory",
            memory_kib / frac(inp.rss_kib_per_user),
            f"{fmt(inp.memory_gib)} GiB x {fmt(MEMORY_SHARE_FOR_CHARON)} for charon / "
            f"{fmt(inp.rss_kib_per_user)} KiB per user",
            inp.source("rss_kib_per_user"),
        ),
    ]


def size_farm(inp: PlanInput, *, min_nodes: int = 0) -> Sizing:
    """Node count = max over limits of ceil(load / users per node), plus the redundancy spares."""
    concurrent = inp.concurrent
    load = concurrent * inp.headroom
    results = tuple(
        LimitResult(key, title, per_node, max(1, math.ceil(load / per_node)), how, source)
        for key, title, per_node, how, source in per_node_limits(inp)
    )
    base = max(result.nodes for result in results)
    # The binding limit is the one the peak uses most of; it also sets `base` (the largest ratio's ceiling).
    tightest = max(results, key=lambda result: load / result.users_per_node)
    node_count = base + inp.spares
    reason = (
        f"{base} node{'s carry' if base != 1 else ' carries'} {concurrent:,} concurrent users + "
        f"{fmt(inp.headroom_percent)} % headroom = {fmt_users(load)}; {tightest.key} binds "
        f"({tightest.how}: {fmt_users(tightest.users_per_node)} users per node), "
        f"+ {inp.spares} spare{'s' if inp.spares != 1 else ''} ({inp.redundancy}) = {node_count}"
    )
    if min_nodes > node_count:
        reason += f"; raised to {min_nodes} (the inventory already has {min_nodes} concentrators)"
        node_count = min_nodes
    return Sizing(concurrent, load, results, base, inp.spares, node_count, tightest.key, reason)


def failover_share(concurrent: int, nodes: int, failed: int, buckets: int = DEFAULT_BUCKETS) -> int:
    """Users a survivor may have to carry when *failed* of *nodes* are down.

    The bucket table gives each survivor at most ceil(buckets / survivors) buckets, so its share of the
    users is at most that fraction; this is never below ceil(concurrent / survivors).
    """
    survivors = nodes - failed
    if survivors < 1:
        raise SvpnError(f"a farm of {nodes} nodes cannot lose {failed} and keep serving users")
    return math.ceil(concurrent * math.ceil(buckets / survivors) / buckets)


def pool_prefix_for(addresses: int) -> int:
    """The longest prefix (smallest pool) whose usable addresses are at least *addresses*."""
    prefix = POOL_PREFIX_MAX
    while pool_leases(prefix) < addresses:
        prefix -= 1
        if prefix < 1:
            raise SvpnError(f"no IPv4 pool holds {addresses:,} addresses")
    return prefix


def fit_pools(
    inp: PlanInput, sizing: Sizing, old: Sequence[Concentrator], buckets: int
) -> tuple[int, PoolSizing]:
    """The node count (raised if existing pools are too small for the share) and the new pools' size."""
    failed = inp.spares
    smallest_old = min((node.pool_addresses for node in old), default=None)
    for nodes in range(sizing.node_count, buckets + 1):
        share = failover_share(sizing.concurrent, nodes, failed, buckets)
        needed = math.ceil(share * inp.headroom)
        if smallest_old is None or smallest_old >= needed:
            prefix = pool_prefix_for(needed)
            survivors = nodes - failed
            reason = (
                f"after {failed} of {nodes} nodes {'fails' if failed == 1 else 'fail'}, a survivor owns "
                "at most "
                f"{math.ceil(buckets / survivors)} of {buckets} buckets = {share:,} users, "
                f"+ {fmt(inp.headroom_percent)} % headroom = {needed:,} addresses: "
                f"/{prefix} holds {pool_leases(prefix):,}"
            )
            return nodes, PoolSizing(failed, share, needed, prefix, reason)
    raise SvpnError(
        f"{field_name('users')}: {inp.users:,} users need more than {buckets} concentrators "
        f"(the LB's bucket table has {buckets} buckets); use larger nodes or plan several farms"
    )
