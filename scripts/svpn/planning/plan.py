"""Capacity planning: from "how many users" to a farm (nodes, pools, addresses, tuning). Pure logic.

The inputs arrive in layers (defaults, a grown inventory's stored plan, a plan file, a calibration file,
flags); `svpn.planning.inputs.resolve_input` validates them into one `PlanInput`, `make_plan` here turns
that into a `Plan`: `sizing` counts the nodes and sizes their pools, `layout` places them. Nothing here
reads or writes files: `svpn.inventory` renders and checks inventories, `svpn.cli.plan` does the I/O.

The sizing model, and where each default figure comes from, is spelled out next to the figures (in
`defaults`, `sizing` and `tuning`) and repeated in every inventory's CAPACITY.md.

Imports svpn (its version), svpn.farm.buckets and the other svpn.planning modules.
"""

from __future__ import annotations

from dataclasses import replace

from svpn import __version__
from svpn.farm.buckets import DEFAULT_BUCKETS, buckets_per_node
from svpn.planning.layout import check_addresses_unique, lay_out_concentrators, lay_out_loadbalancers
from svpn.planning.model import ExistingFarm, Plan, PlanInput, input_hash
from svpn.planning.sizing import fit_pools, size_farm


def make_plan(inp: PlanInput, existing: ExistingFarm | None = None, buckets: int = DEFAULT_BUCKETS) -> Plan:
    """Size the farm and lay it out; with *existing*, keep its nodes and add to them."""
    old = existing.concentrators if existing else ()
    sizing = size_farm(inp, min_nodes=len(old))
    node_count, pools = fit_pools(inp, sizing, old, buckets)
    if node_count != sizing.node_count:
        sizing = replace(
            sizing,
            node_count=node_count,
            reason=f"{sizing.reason}; raised to {node_count} so a survivor's failover share fits the "
            f"smallest existing pool ({min(n.pool_addresses for n in old):,} addresses)",
        )
    concentrators = lay_out_concentrators(inp, old, node_count, pools.prefix)
    loadbalancers = lay_out_loadbalancers(inp, existing.loadbalancers if existing else ())
    check_addresses_unique(concentrators, loadbalancers, inp)
    counts = buckets_per_node([node.name for node in concentrators], buckets)
    return Plan(
        inp, input_hash(inp), __version__, sizing, pools, concentrators, loadbalancers, buckets, counts
    )
