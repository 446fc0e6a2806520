"""Where a farm's parts go: the fixed host offsets and names, virtual-IP pools carved from the supernet,
the concentrators' and LBs' addresses (keeping an existing farm's), and a check that no address is used twice.

Imports svpn.core.errors, svpn.farm.facts and svpn.planning's defaults, model and tuning.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Sequence

from svpn.core.errors import SvpnError
from svpn.farm.facts import pool_leases
from svpn.planning.defaults import field_name
from svpn.planning.model import Concentrator, LoadBalancer, PlanInput
from svpn.planning.tuning import tuning_for

IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address

# Host addresses inside the farm's networks, as offsets from each network's base address. .1 is left to
# the network's gateway (docker's bridge in the lab).
LB_HOST_OFFSETS = (11, 12)
VIP_HOST_OFFSET = 100
INSIDE_VIP_HOST_OFFSET = 10
LB_VRRP_PRIORITIES = (150, 100)  # lb1 holds the VIPs while both LBs are up
CONCENTRATOR_FIRST_OFFSET = 21

LB_NAMES = ("lb1", "lb2")
NODE_PREFIX = "conc"


def host_at(network: IPv4Network, offset: int, key: str) -> IPv4Address:
    """Host .*offset* of *network*: the default address of the input *key*."""
    if offset >= network.num_addresses - 1:
        raise SvpnError(
            f"{field_name(key)}: network {network} has no host .{offset} for the default; "
            f"give the address explicitly or a network of /{32 - (offset + 2).bit_length()} or larger"
        )
    return network.network_address + offset


def carve_pools(
    supernet: IPv4Network, prefix: int, count: int, taken: Sequence[IPv4Network] = ()
) -> list[IPv4Network]:
    """The first *count* aligned /prefix blocks of *supernet*, in address order, overlapping nothing taken."""
    if prefix < supernet.prefixlen:
        return [] if count == 0 else _too_small(supernet, prefix, count, 0)
    chosen: list[IPv4Network] = []
    blocked = sorted((net for net in taken if net.overlaps(supernet)), key=lambda n: n.network_address)
    size = 2 ** (32 - prefix)
    address = int(supernet.network_address)
    end = int(supernet.broadcast_address)
    while len(chosen) < count and address + size - 1 <= end:
        block = IPv4Network((address, prefix))
        clash = next((net for net in blocked if net.overlaps(block)), None)
        if clash is None:
            chosen.append(block)
            address += size
        else:
            # jump past the blocking network, staying aligned to the pool size
            after = int(clash.broadcast_address) + 1
            address = max(address + size, -(-after // size) * size)
    if len(chosen) < count:
        _too_small(supernet, prefix, count, len(chosen))
    return chosen


def _too_small(supernet: IPv4Network, prefix: int, count: int, fits: int) -> list[IPv4Network]:
    needed = max(0, prefix - math.ceil(math.log2(max(count, 1))))
    raise SvpnError(
        f"{field_name('supernet')}: {supernet} is too small: it has room for {fits} of the {count} pools "
        f"of /{prefix} ({pool_leases(prefix):,} addresses each) this plan needs for its users and "
        f"failover; give a /{needed} or larger (outside reserved networks and existing pools)"
    )


def lay_out_concentrators(
    inp: PlanInput, old: Sequence[Concentrator], node_count: int, prefix: int
) -> tuple[Concentrator, ...]:
    supernet = ipaddress.IPv4Network(inp.supernet)
    for node in old:
        if not node.pool.subnet_of(supernet):
            raise SvpnError(
                f"{field_name('supernet')}: {supernet} does not contain {node.name}'s existing pool "
                f"{node.pool}"
            )
    taken = [ipaddress.IPv4Network(net) for net in inp.reserved_networks] + [node.pool for node in old]
    new_count = node_count - len(old)
    pools = carve_pools(supernet, prefix, new_count, taken)
    inside_net = ipaddress.IPv4Network(inp.inside_network)
    internal_net = ipaddress.IPv4Network(inp.internal_network)
    fixed = {ipaddress.IPv4Address(a) for a in (inp.vip, inp.inside_vip, *inp.lb_addresses, *inp.dns)}
    fixed |= {inside_net.network_address + offset for offset in LB_HOST_OFFSETS}
    inside = _free_hosts(inside_net, fixed | {n.inside for n in old}, new_count, "inside_network")
    internal = _free_hosts(internal_net, fixed | {n.internal for n in old}, new_count, "internal_network")
    used_numbers = {_node_number(node.name) for node in old}
    numbers = [n for n in range(1, node_count + len(old) + 1) if n not in used_numbers][:new_count]
    new = tuple(
        Concentrator(
            f"{NODE_PREFIX}{number}",
            pool,
            inside_ip,
            internal_ip,
            tuning_for(inp.cores, pool_leases(prefix), inp.setup_rate_per_core),
        )
        for number, pool, inside_ip, internal_ip in zip(numbers, pools, inside, internal, strict=True)
    )
    return tuple(sorted((*old, *new), key=lambda node: (_node_number(node.name), node.name)))


def _node_number(name: str) -> int:
    match = re.fullmatch(rf"{NODE_PREFIX}(\d+)", name)
    return int(match.group(1)) if match else 0


def _free_hosts(network: IPv4Network, taken: set[IPv4Address], count: int, key: str) -> list[IPv4Address]:
    hosts: list[IPv4Address] = []
    offset = CONCENTRATOR_FIRST_OFFSET
    while len(hosts) < count:
        if offset >= network.num_addresses - 1:
            raise SvpnError(
                f"{field_name(key)}: {network} has no room for {count} more concentrators "
                f"(addresses from .{CONCENTRATOR_FIRST_OFFSET} on); give a larger network"
            )
        address = network.network_address + offset
        if address not in taken:
            hosts.append(address)
        offset += 1
    return hosts


def lay_out_loadbalancers(inp: PlanInput, old: Sequence[LoadBalancer]) -> tuple[LoadBalancer, ...]:
    inside_net = ipaddress.IPv4Network(inp.inside_network)
    planned = tuple(
        LoadBalancer(name, ipaddress.IPv4Address(public), host_at(inside_net, offset, "inside_network"))
        for name, public, offset in zip(LB_NAMES, inp.lb_addresses, LB_HOST_OFFSETS, strict=True)
    )
    if not old:
        return planned
    by_name = {lb.name: lb for lb in old}
    if sorted(by_name) != list(LB_NAMES):
        raise SvpnError(f"the inventory's load balancers are {', '.join(sorted(by_name))}; expected lb1, lb2")
    kept = tuple(by_name[name] for name in LB_NAMES)
    if tuple(str(lb.public) for lb in kept) != inp.lb_addresses:
        raise SvpnError(
            f"{field_name('lb_addresses')}: {','.join(inp.lb_addresses)} differs from the inventory's "
            f"{','.join(str(lb.public) for lb in kept)}; a grown farm keeps its addresses"
        )
    return kept


def check_addresses_unique(
    concentrators: Sequence[Concentrator], loadbalancers: Sequence[LoadBalancer], inp: PlanInput
) -> None:
    seen: dict[IPv4Address, str] = {
        ipaddress.IPv4Address(inp.vip): "vip",
        ipaddress.IPv4Address(inp.inside_vip): "inside_vip",
    }
    pairs = [(lb.name, a) for lb in loadbalancers for a in (lb.public, lb.inside)]
    pairs += [(node.name, a) for node in concentrators for a in (node.inside, node.internal)]
    for owner, address in pairs:
        if address in seen:
            raise SvpnError(f"address {address} of {owner} is already used by {seen[address]}")
        seen[address] = owner
