"""The farm checks shared by `svpn inventory check` and the playbooks' filter ``svpn_farm_problems``:
`farm_problems` takes any farm inventory (planned or written by hand, like inventories/lab) as Ansible
sees it (farm-wide vars, groups, hostvars) and lists every problem, one line each. Never raises.

Imports svpn.core.errors, svpn.farm, svpn.planning and svpn.inventory.schema.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from svpn.core.errors import SvpnError
from svpn.farm import proposals
from svpn.farm.buckets import DEFAULT_BUCKETS
from svpn.farm.facts import DEFAULT_NODE_STATE, NODE_STATES, TUNNEL_MODES, pool_leases
from svpn.inventory.management import ssh_problems
from svpn.inventory.schema import (
    ALL_KEYS,
    LB_GROUP,
    NETWORK_ROLES,
    NODE_GROUP,
    OPTIONAL_PLAN_KEYS,
    PLAN_KEYS,
    TUNING_KEYS,
)
from svpn.planning.defaults import REDUNDANCY_SPARES
from svpn.planning.layout import LB_NAMES
from svpn.planning.numbers import frac
from svpn.planning.sizing import POOL_PREFIX_MAX, failover_share
from svpn.planning.validators import as_address, as_dns_name, as_field_number, as_network, as_proposals

# farm-wide keys every farm needs (the roles require them); the planner's inventories have all of ALL_KEYS
FARM_KEYS = (
    "svpn_vpn_name",
    "svpn_public_address",
    "svpn_networks",
    "svpn_tunnel_mode",
    "svpn_internal_networks",
    "svpn_dns_servers",
    "svpn_ike_proposals",
    "svpn_esp_proposals",
    "svpn_pki_dir",
)
# farm-wide keys the planner does not write but the playbooks read
OTHER_FARM_KEYS = ("svpn_lab", "svpn_pki_passphrase_file", "svpn_pki_passphrase", "svpn_bundles_dir")
KNOWN_FARM_KEYS = (*ALL_KEYS, *OTHER_FARM_KEYS)
# per-host svpn_* keys: present when the farm-wide values come from a host's vars (Ansible has no other view)
HOST_KEYS = ("svpn_addresses",)
_POWERS = {
    "concentrator_ikesa_table_size": [2**k for k in range(8, 17)],
    "concentrator_ikesa_table_segments": [2**k for k in range(9)],
}


@dataclass
class _FarmFacts:
    """What farm_problems could read from the farm-wide values (left empty/None where they were invalid)."""

    planned: bool
    network_names: list[str] | None = None  # the names in svpn_networks; None if it is not a mapping
    networks: dict[str, ipaddress.IPv4Network] = field(default_factory=dict)
    internal_networks: list[ipaddress.IPv4Network] = field(default_factory=list)
    vip: ipaddress.IPv4Address | None = None
    inside_vip: ipaddress.IPv4Address | None = None
    users: int | None = None
    concurrency: float | int | None = None
    redundancy: str | None = None
    supernet: ipaddress.IPv4Network | None = None
    reserved: list[ipaddress.IPv4Network] = field(default_factory=list)


def _check(out: list[str], prefix: str, name: str, func: Callable[[], Any]) -> Any:
    """Run a validator from svpn.planning.validators; its SvpnError becomes one problem about *name*, the
    result None."""
    try:
        return func()
    except SvpnError as err:
        _field, _sep, reason = str(err).partition(": ")
        out.append(f"{prefix}{name}: {reason}")
        return None


def shown(value: Any) -> str:
    return f"{type(value).__name__}: {value!r}"


def _is_list(value: Any) -> bool:
    return isinstance(value, list | tuple)


def _members(groups: Mapping[str, Sequence[str]], group: str) -> list[str]:
    hosts = groups.get(group) if isinstance(groups, Mapping) else None
    if hosts is None or isinstance(hosts, str | bytes) or not isinstance(hosts, Iterable):
        return []
    return list(dict.fromkeys(str(host) for host in hosts))


def _placement(address: ipaddress.IPv4Address, net: ipaddress.IPv4Network, name: str) -> str | None:
    """Why *address* cannot be a host's address on *net* (named *name*), or None."""
    if address not in net:
        return f"is outside {name} {net}"
    if net.prefixlen <= 30 and address == net.network_address:
        return f"is the network address of {name} {net}"
    if net.prefixlen <= 30 and address == net.broadcast_address:
        return f"is the broadcast address of {name} {net}"
    return None


def _read_farm(farm: Mapping[str, Any], has_lbs: bool, out: list[str]) -> _FarmFacts:
    """Check the farm-wide values; keep in the facts what the host checks need."""
    facts = _FarmFacts(planned="svpn_plan" in farm)
    _check_farm_keys(farm, facts.planned, has_lbs, out)
    _read_networks(farm, facts, has_lbs or facts.planned, out)
    _check_farm_scalars(farm, out)
    _check_farm_crypto(farm, out)
    _read_farm_lists(farm, facts, out)
    _read_vips(farm, facts, out)
    _read_user_figures(farm, facts, out)
    if facts.planned:
        _read_stored_plan(farm["svpn_plan"], facts, out)
    return facts


def _check_farm_keys(farm: Mapping[str, Any], planned: bool, has_lbs: bool, out: list[str]) -> None:
    """No unknown svpn_* key; every key the roles (or, planned, the planner) need is there."""
    for key in sorted(str(k) for k in farm):
        if key.startswith("svpn_") and key not in KNOWN_FARM_KEYS and key not in HOST_KEYS:
            out.append(f"{key}: unknown farm-wide setting; valid: {', '.join(KNOWN_FARM_KEYS)}")
    required = (
        [key for key in ALL_KEYS if key not in OPTIONAL_PLAN_KEYS]
        if planned
        else (*FARM_KEYS, *(["svpn_lb_inside_address"] if has_lbs else []))
    )
    for key in required:
        if key not in farm:
            out.append(f"{key} missing")


def _check_farm_scalars(farm: Mapping[str, Any], out: list[str]) -> None:
    """Strings and flags of the right type; the VPN name a DNS name, the tunnel mode a known one."""
    for key in (
        "svpn_vpn_name",
        "svpn_tunnel_mode",
        "svpn_pki_dir",
        "svpn_pki_passphrase_file",
        "svpn_bundles_dir",
    ):
        if key in farm and not isinstance(farm[key], str):
            out.append(f"{key} must be a string, got {shown(farm[key])}")
    if "svpn_lab" in farm and not isinstance(farm["svpn_lab"], bool):
        out.append(f"svpn_lab must be true or false, got {shown(farm['svpn_lab'])}")
    if isinstance(farm.get("svpn_vpn_name"), str):
        _check(out, "", "svpn_vpn_name", lambda: as_dns_name("svpn_vpn_name", farm["svpn_vpn_name"]))
    mode = farm.get("svpn_tunnel_mode")
    if isinstance(mode, str) and mode not in TUNNEL_MODES:
        out.append(f"svpn_tunnel_mode: {mode!r}; valid: {', '.join(TUNNEL_MODES)}")


def _check_farm_crypto(farm: Mapping[str, Any], out: list[str]) -> None:
    """Proposals well formed, then the crypto policy (svpn.farm.proposals) on the well-formed ones."""
    well_formed: dict[str, list[str] | None] = {}
    for key in ("svpn_ike_proposals", "svpn_esp_proposals"):
        well_formed[key] = None
        if key in farm:
            if _is_list(farm[key]):
                if _check(out, "", key, lambda k=key: as_proposals(k, list(farm[k]))) is not None:
                    well_formed[key] = list(farm[key])
            else:
                out.append(f"{key} must be a list of proposals, got {shown(farm[key])}")
    pfs_optional = farm.get("svpn_esp_pfs_optional", False)
    if not isinstance(pfs_optional, bool):
        out.append(f"svpn_esp_pfs_optional must be true or false, got {shown(pfs_optional)}")
    # the crypto policy (svpn.farm.proposals): every weak or unknown keyword, every ESP proposal without PFS
    out += proposals.policy_problems(
        well_formed["svpn_ike_proposals"], well_formed["svpn_esp_proposals"], pfs_optional is True
    )


def _read_farm_lists(farm: Mapping[str, Any], facts: _FarmFacts, out: list[str]) -> None:
    """The internal networks users reach (kept) and the DNS servers (checked)."""
    for item in _farm_list(farm, "svpn_internal_networks", out):
        net = _check(out, "", "svpn_internal_networks", lambda i=item: as_network("n", i))
        if net is not None:
            facts.internal_networks.append(net)
    for item in _farm_list(farm, "svpn_dns_servers", out):
        _check(out, "", "svpn_dns_servers", lambda i=item: as_address("a", i))


def _read_vips(farm: Mapping[str, Any], facts: _FarmFacts, out: list[str]) -> None:
    """The public VIP and the LB pair's inside VIP: addresses, each inside its network."""
    for key, role in (("svpn_public_address", "public"), ("svpn_lb_inside_address", "inside")):
        if key not in farm:
            continue
        address = _check(out, "", key, lambda k=key: as_address(k, farm[k]))
        net = facts.networks.get(role)
        if (
            address is not None
            and net is not None
            and (why := _placement(address, net, f"svpn_networks.{role}"))
        ):
            out.append(f"{key} {address} {why}")
        if role == "public":
            facts.vip = address
        else:
            facts.inside_vip = address


def _read_user_figures(farm: Mapping[str, Any], facts: _FarmFacts, out: list[str]) -> None:
    """The planned users and their peak concurrency, where given."""
    if "svpn_users" in farm:
        facts.users = _check(out, "", "svpn_users", lambda: as_field_number("users", farm["svpn_users"]))
    if "svpn_peak_concurrency_percent" in farm:
        facts.concurrency = _check(
            out,
            "",
            "svpn_peak_concurrency_percent",
            lambda: as_field_number("concurrency_percent", farm["svpn_peak_concurrency_percent"]),
        )


def _farm_list(farm: Mapping[str, Any], key: str, out: list[str]) -> list[Any]:
    value = farm.get(key, [])
    if not _is_list(value):
        out.append(f"{key} must be a list, got {shown(value)}")
        return []
    return list(value)


def _read_networks(farm: Mapping[str, Any], facts: _FarmFacts, needs_inside: bool, out: list[str]) -> None:
    raw = farm.get("svpn_networks")
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        out.append(f"svpn_networks must be a mapping of network name to CIDR, got {shown(raw)}")
        return
    facts.network_names = [str(name) for name in raw]
    for role in NETWORK_ROLES:
        if role not in raw and (role != "inside" or needs_inside):
            out.append(f"svpn_networks.{role} missing")
    for name, value in raw.items():
        key = f"svpn_networks.{name}"
        net = _check(out, "", key, lambda k=key, v=value: as_network(k, v))
        if net is not None:
            facts.networks[str(name)] = net
    order = {role: i for i, role in enumerate(NETWORK_ROLES)}
    named = sorted(facts.networks.items(), key=lambda item: order.get(item[0], len(order)))
    for i, (name_a, net_a) in enumerate(named):
        for name_b, net_b in named[i + 1 :]:
            if net_a.overlaps(net_b):
                out.append(f"svpn_networks.{name_a} {net_a} overlaps svpn_networks.{name_b} {net_b}")


def _read_stored_plan(stored: Any, facts: _FarmFacts, out: list[str]) -> None:
    if not isinstance(stored, Mapping):
        out.append(f"svpn_plan must be a mapping (the planner's inputs), got {shown(stored)}")
        return
    for key in sorted(str(k) for k in set(stored) - {*PLAN_KEYS, "limit_sources"}):
        out.append(f"svpn_plan: unknown key {key!r}; valid: {', '.join(PLAN_KEYS)}, limit_sources")
    for key in PLAN_KEYS:
        if key not in stored:
            out.append(f"svpn_plan.{key} missing")
    redundancy = stored.get("redundancy")
    if isinstance(redundancy, str) and redundancy in REDUNDANCY_SPARES:
        facts.redundancy = redundancy
    elif "redundancy" in stored:
        out.append(f"svpn_plan.redundancy: {redundancy!r}; valid: {', '.join(REDUNDANCY_SPARES)}")
    if "supernet" in stored:
        facts.supernet = _check(out, "", "svpn_plan.supernet", lambda: as_network("s", stored["supernet"]))
    reserved = stored.get("reserved_networks", [])
    if not _is_list(reserved):
        out.append(f"svpn_plan.reserved_networks must be a list, got {shown(reserved)}")
        reserved = []
    for item in reserved:
        net = _check(out, "", "svpn_plan.reserved_networks", lambda i=item: as_network("r", i))
        if net is not None:
            facts.reserved.append(net)


def _check_tuning(prefix: str, hostvars: Mapping[str, Any], planned: bool, out: list[str]) -> None:
    """charon tuning: checked where set; required only in a planned farm (the role has defaults)."""
    for key in TUNING_KEYS:
        if key not in hostvars:
            if planned:
                out.append(f"{prefix}{key} missing")
            continue
        value = hostvars[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            out.append(f"{prefix}{key}: {value!r}; give a whole number >= 1")
        elif key in _POWERS and value not in _POWERS[key]:
            out.append(f"{prefix}{key}: {value}; valid: {', '.join(map(str, _POWERS[key]))}")
    init = hostvars.get("concentrator_init_limit_half_open")
    cookie = hostvars.get("concentrator_cookie_threshold")
    if isinstance(init, int) and isinstance(cookie, int) and cookie > init:
        out.append(
            f"{prefix}concentrator_cookie_threshold {cookie} > init_limit_half_open {init}: "
            "COOKIEs never start"
        )


def _buckets(value: Any, nodes: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < max(1, nodes):
        return None
    return value


@dataclass
class _Tally:
    """What the per-host checks gather for the farm-wide ones after them."""

    owners: dict[ipaddress.IPv4Address, tuple[str, str]]  # address -> (host or "", what uses it)
    pools: dict[str, ipaddress.IPv4Network] = field(default_factory=dict)
    active: int = 0  # concentrators that take new users
    buckets: int | None = None  # the first valid loadbalancer_buckets


def farm_problems(
    farm: Mapping[str, Any],
    groups: Mapping[str, Sequence[str]],
    hostvars: Mapping[str, Mapping[str, Any]],
) -> list[str]:
    """Every problem of a farm inventory, one line each naming the host (or farm-wide key) and the field.

    *farm* holds the farm-wide values (group_vars/all; other keys are ignored, so a host's vars do too),
    *groups* maps group names to host names and *hostvars* hosts to their variables with the group vars
    merged in, as Ansible's ``groups`` and ``hostvars`` do (extra keys such as ansible_* are ignored).

    Any farm: networks and addresses are valid, hosts' svpn_addresses lie inside the named networks and
    are unique, pools overlap nothing, the LBs have a backend that takes new users. Hosts of other groups
    (a lab's clients and apps) are checked only for their addresses. A farm written by `svpn plan` (one
    with svpn_plan) must also be complete: every planner key and tuning value, and pools that hold the
    planned users when nodes fail. Never raises: [] means no problems.
    """
    if not isinstance(farm, Mapping):
        return [f"the farm-wide values must be a mapping, got {shown(farm)}"]
    if not isinstance(hostvars, Mapping):
        return [f"hostvars must be a mapping of host to its variables, got {shown(hostvars)}"]
    out: list[str] = []
    lbs, nodes = _members(groups, LB_GROUP), _members(groups, NODE_GROUP)
    facts = _read_farm(farm, bool(lbs), out)
    _check_groups(facts, lbs, nodes, out)
    tally = _Tally(_vip_owners(facts))
    for host in dict.fromkeys([*lbs, *nodes, *_other_hosts(groups)]):
        _check_host(host, hostvars.get(host), lbs, nodes, facts, tally, out)
    if nodes and not tally.active:
        out.append("no concentrator has concentrator_state=active (the LB needs at least one backend)")
    _check_pools(tally.pools, facts, out)
    _check_capacity(facts, tally.pools, tally.buckets or DEFAULT_BUCKETS, out)
    return [one_line(line) for line in out]


def _check_groups(facts: _FarmFacts, lbs: Sequence[str], nodes: Sequence[str], out: list[str]) -> None:
    """Some concentrators; in a planned farm, the planner's LB pair."""
    if not nodes:
        out.append(f"no concentrators (the group {NODE_GROUP} has no hosts)")
    if facts.planned and sorted(lbs) != list(LB_NAMES):
        out.append(
            f"loadbalancers are {', '.join(lbs) or 'none'}; the planner's LB pair is {' and '.join(LB_NAMES)}"
        )


def _other_hosts(groups: Mapping[str, Sequence[str]]) -> list[str]:
    """Hosts of groups other than the LBs and concentrators (a lab's clients and apps)."""
    return [
        str(host)
        for name in (groups if isinstance(groups, Mapping) else {})
        if name not in (LB_GROUP, NODE_GROUP)
        for host in _members(groups, name)
    ]


def _vip_owners(facts: _FarmFacts) -> dict[ipaddress.IPv4Address, tuple[str, str]]:
    """The VIPs, as addresses no host may also use."""
    owners: dict[ipaddress.IPv4Address, tuple[str, str]] = {}
    for key, vip in (("svpn_public_address", facts.vip), ("svpn_lb_inside_address", facts.inside_vip)):
        if vip is not None:
            owners.setdefault(vip, ("", key))
    return owners


def _check_host(
    host: str,
    host_vars: Any,
    lbs: Sequence[str],
    nodes: Sequence[str],
    facts: _FarmFacts,
    tally: _Tally,
    out: list[str],
) -> None:
    """One host: its addresses; a concentrator's pool, state and tuning; an LB's bucket count; its SSH."""
    prefix = f"host {host}: "
    is_lb, is_node = host in lbs, host in nodes
    if is_lb and is_node:
        out.append(f"{prefix}both a load balancer and a concentrator (a host is one or the other)")
    if host_vars is None:
        host_vars = {}
    elif not isinstance(host_vars, Mapping):
        out.append(f"{prefix}its variables must be a mapping, got {shown(host_vars)}")
        host_vars = {}
    required = [*(["public", "inside"] if is_lb else []), *(["inside"] if is_node and lbs else [])]
    required += ["internal"] if is_node else []
    _check_addresses(host, host_vars, required, is_node, bool(lbs), facts, tally.owners, out)
    if is_node:
        _check_concentrator(host, host_vars, facts.planned, tally, out)
        ssh_problems(host, NODE_GROUP, host_vars, out)
    if is_lb:
        _check_lb_buckets(prefix, host_vars, len(nodes), facts.planned, tally, out)
        ssh_problems(host, LB_GROUP, host_vars, out)


def _check_concentrator(
    host: str, host_vars: Mapping[str, Any], planned: bool, tally: _Tally, out: list[str]
) -> None:
    """A concentrator's pool (kept for the farm-wide checks), its state and its charon tuning."""
    prefix = f"host {host}: "
    pool = _check_pool(prefix, host_vars, out)
    if pool is not None:
        tally.pools[host] = pool
    state = host_vars.get("concentrator_state", DEFAULT_NODE_STATE)
    if not isinstance(state, str) or state not in NODE_STATES:
        out.append(f"{prefix}concentrator_state: {state!r}; valid: {', '.join(NODE_STATES)}")
    elif state == "active":
        tally.active += 1
    _check_tuning(prefix, host_vars, planned, out)


def _check_lb_buckets(
    prefix: str, host_vars: Mapping[str, Any], nodes: int, planned: bool, tally: _Tally, out: list[str]
) -> None:
    """An LB's loadbalancer_buckets: at least one per concentrator; required in a planned farm."""
    if "loadbalancer_buckets" in host_vars:
        value = host_vars["loadbalancer_buckets"]
        if _buckets(value, nodes) is None:
            out.append(
                f"{prefix}loadbalancer_buckets: {value!r}; give a whole number >= the {nodes} concentrators"
            )
        elif tally.buckets is None:
            tally.buckets = value
    elif planned:
        out.append(f"{prefix}loadbalancer_buckets missing")


def one_line(text: str) -> str:
    """*text* with control characters (from names in the inventory) escaped, so a problem is one line."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _check_addresses(
    host: str,
    host_vars: Mapping[str, Any],
    required: Sequence[str],
    is_node: bool,
    has_lbs: bool,
    facts: _FarmFacts,
    owners: dict[ipaddress.IPv4Address, tuple[str, str]],
    out: list[str],
) -> None:
    """A host's svpn_addresses: present where its groups need them, inside the named networks, unique."""
    prefix = f"host {host}: "
    block = host_vars.get("svpn_addresses")
    if block is None:
        block = {}
    elif not isinstance(block, Mapping):
        out.append(f"{prefix}svpn_addresses must be a mapping of network name to address, got {shown(block)}")
        block = {}
    for role in dict.fromkeys(required):
        if role not in block:
            hint = " (LBs DNAT to it)" if role == "inside" and is_node else ""
            out.append(f"{prefix}svpn_addresses.{role} missing{hint}")
    for role, value in block.items():
        key = f"svpn_addresses.{role}"
        if facts.network_names is not None and str(role) not in facts.network_names:
            out.append(f"{prefix}{key}: no such network in svpn_networks ({', '.join(facts.network_names)})")
        address = _check(out, prefix, key, lambda k=key, v=value: as_address(k, v))
        if address is None:
            continue
        net = facts.networks.get(str(role))
        if net is not None and (why := _placement(address, net, f"svpn_networks.{role}")):
            out.append(f"{prefix}{key} {address} {why}")
        owner_host, owner_key = owners.get(address, (None, ""))
        if owner_host is None:
            owners[address] = (host, key)
        elif not has_lbs and is_node and owner_key == "svpn_public_address" and role == "public":
            owners[address] = (host, key)  # no LBs: a concentrator holds the public address itself
        elif owner_host == host:
            out.append(f"{prefix}{key} {address} is also its {owner_key}")
        else:
            out.append(f"{prefix}{key} {address} is also used by {owner_host or owner_key}")


def _check_pool(prefix: str, host_vars: Mapping[str, Any], out: list[str]) -> ipaddress.IPv4Network | None:
    if "concentrator_pool" not in host_vars:
        out.append(f"{prefix}concentrator_pool missing")
        return None
    pool = _check(out, prefix, "concentrator_pool", lambda: as_network("p", host_vars["concentrator_pool"]))
    if pool is not None and pool_leases(pool.prefixlen) < 1:
        out.append(
            f"{prefix}concentrator_pool {pool} holds no client addresses "
            f"(the smallest pool is a /{POOL_PREFIX_MAX})"
        )
    return pool


def _check_pools(pools: Mapping[str, ipaddress.IPv4Network], facts: _FarmFacts, out: list[str]) -> None:
    """Pools overlap no other pool, no farm network, no internal network (nor, planned, a reserved one)."""
    named = list(pools.items())
    for i, (name_a, pool_a) in enumerate(named):
        for name_b, pool_b in named[i + 1 :]:
            if pool_a.overlaps(pool_b):
                out.append(f"host {name_a}: concentrator_pool {pool_a} overlaps {name_b}'s {pool_b}")
    for name, pool in named:
        prefix = f"host {name}: concentrator_pool {pool}"
        for role, net in facts.networks.items():
            if pool.overlaps(net):
                out.append(f"{prefix} overlaps svpn_networks.{role} {net}")
        for net in facts.internal_networks:
            if pool.overlaps(net) and net not in facts.networks.values():
                out.append(f"{prefix} overlaps svpn_internal_networks {net}")
        if facts.supernet is not None and not pool.subnet_of(facts.supernet):
            out.append(f"{prefix} is outside the supernet {facts.supernet} (svpn_plan.supernet)")
        for net in facts.reserved:
            if pool.overlaps(net):
                out.append(f"{prefix} overlaps {net} (svpn_plan.reserved_networks)")


def _check_capacity(
    facts: _FarmFacts, pools: Mapping[str, ipaddress.IPv4Network], buckets: int, out: list[str]
) -> None:
    """A planned farm: after the failures its redundancy allows, every survivor's pool holds its share."""
    if (
        not facts.planned
        or facts.users is None
        or facts.concurrency is None
        or facts.redundancy is None
        or not pools
    ):
        return
    failed = REDUNDANCY_SPARES[facts.redundancy]
    concurrent = math.ceil(facts.users * frac(facts.concurrency) / 100)
    if len(pools) <= failed:
        out.append(f"{len(pools)} concentrators cannot survive {failed} failures ({facts.redundancy})")
        return
    share = failover_share(concurrent, len(pools), failed, buckets)
    for name, pool in pools.items():
        usable = pool_leases(pool.prefixlen)
        if usable < share:
            out.append(
                f"host {name}: concentrator_pool {pool} holds {usable:,} addresses; after {failed} of "
                f"{len(pools)} nodes fail a survivor may carry {share:,} of the {concurrent:,} concurrent "
                f"users ({facts.redundancy})"
            )
