"""Planner inventories: render a plan as Ansible inventory files, read them back, check them, diff them.

Rendering and checking are pure (they map relative paths to file texts); only `read_tree` and
`write_tree` touch the disk. `farm_problems` checks any farm inventory (planned or written by hand, like
inventories/lab) given as Ansible sees it (farm-wide vars, groups, hostvars): `svpn inventory check` calls
it on the files it read, playbooks through the svpn_farm_problems filter.

The YAML is written by a small emitter of our own so that every file is deterministic and every derived
number carries a comment saying how it was derived; the tests load each file with ``yaml.safe_load`` and
compare it with the data the emitter was given.

Layout (the contract with the roles)::

    hosts.yml                    loadbalancers: lb1, lb2; concentrators: conc1..concN
    group_vars/all.yml           farm-wide facts (svpn_*) and the planner's own inputs (svpn_plan)
    group_vars/loadbalancers.yml loadbalancer_buckets (owners are computed by svpn.farm.buckets at deploy
    time)
    host_vars/concN.yml          addresses, pool, charon tuning
    host_vars/lbN.yml            addresses
    CAPACITY.md, .capacity.svg   the plan in words and a chart (the chart is a dot-file: Ansible would
                                 otherwise try to read an .svg in an inventory directory as INI hosts)
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import json
import math
import os
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write
from svpn.farm import proposals
from svpn.farm.buckets import DEFAULT_BUCKETS
from svpn.planning import plan as planlib
from svpn.planning.plan import Concentrator, ExistingFarm, LoadBalancer, Plan, Tuning

HOSTS = "hosts.yml"
ALL_VARS = "group_vars/all.yml"
LB_VARS = "group_vars/loadbalancers.yml"
CAPACITY_MD = "CAPACITY.md"
CAPACITY_SVG = ".capacity.svg"
COMMENT_WIDTH = 108
GENERATED_MARK = "# Written by `svpn plan`"

TUNING_KEYS = tuple(f"concentrator_{name}" for name in Tuning.__dataclass_fields__)
PLAN_KEYS = (
    "profile",
    "cores",
    "nic_gbps",
    "memory_gib",
    "storm_seconds",
    "redundancy",
    "headroom_percent",
    "supernet",
    "reserved_networks",
    *planlib.LIMIT_KEYS,
)
# group_vars/all.yml key -> plan input key
ALL_TO_INPUT = {
    "svpn_vpn_name": "vpn_name",
    "svpn_public_address": "vip",
    "svpn_lb_inside_address": "inside_vip",
    "svpn_tunnel_mode": "tunnel_mode",
    "svpn_internal_networks": "internal_networks",
    "svpn_dns_servers": "dns",
    "svpn_ike_proposals": "ike_proposals",
    "svpn_esp_proposals": "esp_proposals",
    "svpn_esp_pfs_optional": "esp_pfs_optional",
    "svpn_pki_dir": "pki_dir",
    "svpn_users": "users",
    "svpn_peak_concurrency_percent": "concurrency_percent",
}
NETWORK_ROLES = ("public", "inside", "internal")
ALL_KEYS = ("svpn_networks", "svpn_plan", *ALL_TO_INPUT)
# planner keys a planned farm may lack (the default applies): inventories planned before the key existed
OPTIONAL_PLAN_KEYS = {"svpn_esp_pfs_optional": False}


def host_vars_path(name: str) -> str:
    return f"host_vars/{name}.yml"


# --------------------------------------------------------------------------- a deterministic YAML emitter


@dataclass(frozen=True)
class Entry:
    """One mapping key: a scalar, a list of scalars, a nested mapping (a tuple of Entry) or {} (empty)."""

    key: str
    value: Any
    comment: str = ""


_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:+@-]*$")


def yaml_scalar(value: Any) -> str:
    """A scalar that yaml.safe_load reads back as the same value and type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = yaml.safe_dump(value).removesuffix("\n...\n").strip()
        return text
    if isinstance(value, str):
        if _PLAIN.match(value) and yaml.safe_load(value) == value:
            return value
        # JSON strings are YAML double-quoted scalars; escape what YAML may not hold raw (DEL, C1 controls,
        # its extra line breaks NEL/LS/PS, BOM) with the \u escapes both languages share.
        quoted = json.dumps(value, ensure_ascii=False)
        return _UNSAFE_IN_YAML.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)
    raise TypeError(f"no YAML scalar for {value!r}")


_UNSAFE_IN_YAML = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")


def _comment_lines(text: str, indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for paragraph in text.split("\n"):
        wrapped = textwrap.wrap(paragraph, width=COMMENT_WIDTH - indent, break_on_hyphens=False) or [""]
        lines += [f"{pad}# {line}".rstrip() for line in wrapped]
    return lines


def _emit(entries: Sequence[Entry], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for entry in entries:
        if entry.comment:
            lines += _comment_lines(entry.comment, indent)
        value = entry.value
        key = yaml_scalar(entry.key)
        if isinstance(value, tuple):
            lines.append(f"{pad}{key}:")
            lines += _emit(value, indent + 2)
        elif isinstance(value, dict):
            if value:
                raise TypeError("nested mappings are tuples of Entry")
            lines.append(f"{pad}{key}: {{}}")
        elif isinstance(value, list):
            if not value:
                lines.append(f"{pad}{key}: []")
            else:
                lines.append(f"{pad}{key}:")
                lines += [f"{pad}  - {yaml_scalar(item)}" for item in value]
        else:
            lines += _scalar_lines(pad, key, entry.key, value)
    return lines


def _scalar_lines(pad: str, key: str, raw_key: str, value: Any) -> list[str]:
    """``key: value``; a long string becomes a folded block so every line stays within the width."""
    line = f"{pad}{key}: {yaml_scalar(value)}"
    if len(line) <= COMMENT_WIDTH or not isinstance(value, str) or not value.isprintable():
        return [line]  # short, or holding characters only a quoted scalar can escape
    body = textwrap.wrap(value, width=COMMENT_WIDTH - len(pad) - 2, break_on_hyphens=False)
    folded = [f"{pad}{key}: >-", *(f"{pad}  {part}" for part in body)]
    try:
        if yaml.safe_load("\n".join(folded)) == {raw_key: value}:
            return folded
    except yaml.YAMLError:
        pass
    return [line]  # spacing or text that folding would change: keep it exact on one line


def emit_yaml(header: Sequence[str], entries: Sequence[Entry], intro: str = "") -> str:
    """A YAML document: header comments, ``---``, an optional intro comment, the entries."""
    lines = [*header, "---"]
    if intro:
        lines += _comment_lines(intro, 0)
    lines += _emit(entries, 0)
    return "\n".join(lines) + "\n"


def entries_data(entries: Sequence[Entry]) -> dict[str, Any]:
    """The data the entries describe (what yaml.safe_load of the emitted text returns)."""
    return {
        entry.key: entries_data(entry.value) if isinstance(entry.value, tuple) else entry.value
        for entry in entries
    }


# --------------------------------------------------------------------------- rendering a plan


def provenance(plan: Plan) -> list[str]:
    return [
        f"{GENERATED_MARK} (svpn {plan.version}); change the plan and regenerate rather than editing.",
        f"# Plan input sha256: {plan.input_hash}",
    ]


@dataclass(frozen=True)
class Kept:
    """What growing an inventory carries over from the files it had."""

    host_files: dict[str, str]  # host_vars/NAME.yml of every existing host, byte for byte
    hosts: dict[str, Any]  # hosts.yml as data: host variables (ansible_host...) and other groups stay
    all_extra: dict[str, Any]  # group_vars/all.yml keys the planner does not own
    lb_extra: dict[str, Any]  # group_vars/loadbalancers.yml keys the planner does not own


def data_entries(data: Mapping[str, Any], where: str) -> tuple[Entry, ...]:
    """Entries for existing YAML data carried over as it is (mappings, scalars, lists of scalars)."""
    return tuple(Entry(str(key), _data_value(value, f"{where}.{key}")) for key, value in data.items())


def _data_value(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return data_entries(value, where) if value else {}
    scalar = (str, int, float, bool, type(None))
    if isinstance(value, list) and all(isinstance(item, scalar) for item in value):
        return value
    if isinstance(value, scalar):
        return value
    raise SvpnError(
        f"{where}: {type(value).__name__} values (e.g. lists of mappings) are not carried over when "
        "`svpn plan --from` rewrites this file; move the setting to a file the planner does not write"
    )


def hosts_data(plan: Plan, kept: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """hosts.yml as data: the kept document (if any) with every planned host present."""
    data = copy.deepcopy(dict(kept or {}))
    top = data.setdefault("all", {})
    children = top.setdefault("children", {})
    for group, names in (
        ("loadbalancers", [lb.name for lb in plan.loadbalancers]),
        ("concentrators", [node.name for node in plan.concentrators]),
    ):
        body = children.setdefault(group, {})
        hosts = body.get("hosts") or {}
        body["hosts"] = {
            name: hosts.get(name) or {} for name in [*hosts, *(n for n in names if n not in hosts)]
        }
    return data


def hosts_entries(plan: Plan, kept: Mapping[str, Any] | None = None) -> list[Entry]:
    entries = list(data_entries(hosts_data(plan, kept), "hosts.yml"))
    comment = f"{plan.node_count} concentrators: {plan.sizing.reason}"
    return _with_comment(entries, ("all", "children", "concentrators"), comment)


def _with_comment(entries: Sequence[Entry], path: Sequence[str], comment: str) -> list[Entry]:
    out = []
    for entry in entries:
        if entry.key == path[0] and len(path) == 1:
            entry = Entry(entry.key, entry.value, comment)
        elif entry.key == path[0] and isinstance(entry.value, tuple):
            entry = Entry(entry.key, tuple(_with_comment(entry.value, path[1:], comment)), entry.comment)
        out.append(entry)
    return out


def _extra_entries(extra: Mapping[str, Any], where: str) -> list[Entry]:
    entries = list(data_entries(extra, where))
    if entries:
        first = entries[0]
        entries[0] = Entry(
            first.key, first.value, "Kept from the previous file (settings the planner does not own)."
        )
    return entries


def all_entries(plan: Plan) -> list[Entry]:
    inp = plan.input
    stored = inp.values()
    sources = Entry("limit_sources", tuple(Entry(key, inp.source(key)) for key in planlib.LIMIT_KEYS))
    plan_items = (*(Entry(key, stored[key]) for key in PLAN_KEYS), sources)
    return [
        Entry("svpn_vpn_name", inp.vpn_name, "The public VPN name: the server identity and certificate SAN."),
        Entry("svpn_public_address", inp.vip, "The VIP users dial; the LB pair moves it between them."),
        Entry(
            "svpn_lb_inside_address",
            inp.inside_vip,
            "The LB pair's inside VIP: the concentrators route replies to users through it.",
        ),
        Entry(
            "svpn_networks",
            tuple(Entry(role, stored[f"{role}_network"]) for role in NETWORK_ROLES),
            "public: users arrive, the LBs' outer side; inside: LBs <-> concentrators; "
            "internal: concentrators <-> the city's services.",
        ),
        Entry(
            "svpn_tunnel_mode",
            inp.tunnel_mode,
            "split: only svpn_internal_networks go through the tunnel; full: everything does.",
        ),
        Entry("svpn_internal_networks", list(inp.internal_networks), "What users reach through the tunnel."),
        Entry("svpn_dns_servers", list(inp.dns), "DNS servers handed to clients (may be empty)."),
        Entry(
            "svpn_ike_proposals",
            list(inp.ike_proposals),
            "Crypto: AES-GCM with SHA-2 PRFs and ECP/curve25519 groups only (strongSwan keywords); "
            "the crypto policy (docs/operations.md) refuses weak ones.",
        ),
        Entry(
            "svpn_esp_proposals",
            list(inp.esp_proposals),
            "Each ESP proposal carries a DH group: perfect forward secrecy on every CHILD_SA rekey.",
        ),
        Entry(
            "svpn_esp_pfs_optional",
            inp.esp_pfs_optional,
            "true lets ESP proposals without a DH group through (no PFS on rekeys): only for legacy "
            "clients that cannot do PFS.",
        ),
        Entry("svpn_pki_dir", inp.pki_dir, "The controller's PKI (written only by `svpn pki`)."),
        Entry("svpn_users", inp.users, "Planned users (input)."),
        Entry(
            "svpn_peak_concurrency_percent",
            inp.concurrency_percent,
            f"Percent of them connected at the peak (input): {plan.sizing.concurrent:,} concurrent users.",
        ),
        Entry(
            "svpn_plan",
            plan_items,
            "The planner's other inputs, read by no role: `svpn plan --from` grows the farm from them. "
            "See CAPACITY.md for what each means and where the limits come from.",
        ),
    ]


def loadbalancers_entries(plan: Plan) -> list[Entry]:
    return [
        Entry(
            "loadbalancer_buckets",
            plan.buckets,
            "Buckets of the LB's source-address hash table. The owners are not stored here: svpn.buckets "
            "computes them from this inventory's concentrators (and their health) at deploy time; "
            f"CAPACITY.md shows the split ({planlib.fmt(plan.buckets / plan.node_count)} per node "
            "on average).",
        )
    ]


def concentrator_entries(plan: Plan, node: Concentrator) -> list[Entry]:
    inp = plan.input
    tuning = node.tuning
    how = tuning.explain(inp.cores, node.pool_addresses, inp.cores * planlib.frac(inp.setup_rate_per_core))
    inside_net = ipaddress.IPv4Network(inp.inside_network)
    internal_net = ipaddress.IPv4Network(inp.internal_network)
    return [
        Entry(
            "svpn_addresses",
            (
                Entry("inside", str(node.inside)),
                Entry("internal", str(node.internal)),
            ),
            f"Host .{int(node.inside) - int(inside_net.network_address)} of inside {inside_net} and "
            f".{int(node.internal) - int(internal_net.network_address)} of internal {internal_net} "
            f"(concentrators take the first free hosts from .{planlib.CONCENTRATOR_FIRST_OFFSET}).",
        ),
        Entry(
            "concentrator_pool",
            str(node.pool),
            f"{node.pool_addresses:,} client addresses; {plan.pools.reason}. Carved in order from "
            f"{inp.supernet}.",
        ),
        *(
            Entry(f"concentrator_{name}", getattr(tuning, name), how[name])
            for name in Tuning.__dataclass_fields__
        ),
    ]


def loadbalancer_entries(plan: Plan, lb: LoadBalancer) -> list[Entry]:
    inside_net = ipaddress.IPv4Network(plan.input.inside_network)
    priority = planlib.LB_VRRP_PRIORITIES[planlib.LB_NAMES.index(lb.name)]
    return [
        Entry(
            "svpn_addresses",
            (Entry("public", str(lb.public)), Entry("inside", str(lb.inside))),
            f"public: from lb_addresses in {plan.input.public_network} (the VIP {plan.input.vip} moves "
            f"between the pair); inside: host .{int(lb.inside) - int(inside_net.network_address)} "
            f"of {inside_net}.",
        ),
        Entry(
            "loadbalancer_vrrp_priority",
            priority,
            f"lb1 {planlib.LB_VRRP_PRIORITIES[0]}, lb2 {planlib.LB_VRRP_PRIORITIES[1]}: lb1 holds both VIPs "
            "while both are up (the VIPs do not move back after a failover).",
        ),
    ]


def render_inventory(plan: Plan, kept: Kept | None = None) -> dict[str, str]:
    """Relative path -> text of every inventory file; with *kept*, what an existing inventory keeps."""
    header = provenance(plan)
    keep = kept.host_files if kept else {}
    files = {
        HOSTS: emit_yaml(
            header,
            hosts_entries(plan, kept.hosts if kept else None),
            f"The farm {plan.input.vpn_name}: an LB pair in front of the concentrators. Addresses, pools "
            "and tuning are in host_vars/, farm-wide settings in group_vars/all.yml.",
        ),
        ALL_VARS: emit_yaml(
            header,
            [*all_entries(plan), *_extra_entries(kept.all_extra if kept else {}, ALL_VARS)],
            "Farm-wide settings: roles, client profiles and guides read these.",
        ),
        LB_VARS: emit_yaml(
            header, [*loadbalancers_entries(plan), *_extra_entries(kept.lb_extra if kept else {}, LB_VARS)]
        ),
    }
    for node in plan.concentrators:
        path = host_vars_path(node.name)
        files[path] = keep.get(path) or emit_yaml(
            header,
            concentrator_entries(plan, node),
            f"{node.name}: addresses, virtual-IP pool and charon tuning.",
        )
    for lb in plan.loadbalancers:
        path = host_vars_path(lb.name)
        files[path] = keep.get(path) or emit_yaml(
            header, loadbalancer_entries(plan, lb), f"{lb.name}: one of the LB pair."
        )
    return dict(sorted(files.items()))


def render_tree(plan: Plan, kept: Kept | None = None) -> dict[str, str]:
    """Every file `svpn plan --out` writes: the inventory, CAPACITY.md and its chart."""
    from svpn.planning import capacity_doc

    files = render_inventory(plan, kept)
    files[CAPACITY_MD] = capacity_doc.render_markdown(plan, CAPACITY_SVG)
    files[CAPACITY_SVG] = capacity_doc.render_svg(plan)
    return dict(sorted(files.items()))


# --------------------------------------------------------------------------- reading (duplicate keys found)


class _Loader(yaml.SafeLoader):
    """SafeLoader that records duplicate mapping keys (yaml.safe_load silently keeps the last one)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            loader.duplicates.append(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str) -> tuple[Any, list[str]]:
    """The document and its duplicate keys; a YAML syntax error raises ValueError with the position."""
    loader = _Loader(text)
    try:
        return loader.get_single_data(), loader.duplicates
    except yaml.YAMLError as err:
        raise ValueError(str(err).replace("\n", " ")) from None
    finally:
        loader.dispose()


def read_tree(directory: Path) -> dict[str, str]:
    """The planner-relevant files of an inventory directory (relative path -> text)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SvpnError(f"inventory: {directory} is not a directory")
    files: dict[str, str] = {}
    candidates = [directory / HOSTS, directory / CAPACITY_MD, directory / CAPACITY_SVG]
    for sub in ("group_vars", "host_vars"):
        if (directory / sub).is_dir():
            candidates += sorted((directory / sub).glob("*.yml"))
    for path in candidates:
        if path.is_file():
            files[path.relative_to(directory).as_posix()] = path.read_text(encoding="utf-8")
    return files


# --------------------------------------------------------------------------- checking a farm (any inventory)

LB_GROUP = "loadbalancers"
NODE_GROUP = "concentrators"
NODE_STATES = ("active", "drain")  # concentrator_state (the concentrator role's choices; default active)
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
OTHER_FARM_KEYS = ("svpn_lab", "svpn_pki_passphrase_file", "svpn_bundles_dir")
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
    """Run a validator from svpn.planning.plan; its SvpnError becomes one problem about *name*, the result
    None."""
    try:
        return func()
    except SvpnError as err:
        _field, _sep, reason = str(err).partition(": ")
        out.append(f"{prefix}{name}: {reason}")
        return None


def _shown(value: Any) -> str:
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
    facts = _FarmFacts(planned="svpn_plan" in farm)
    for key in sorted(str(k) for k in farm):
        if key.startswith("svpn_") and key not in KNOWN_FARM_KEYS and key not in HOST_KEYS:
            out.append(f"{key}: unknown farm-wide setting; valid: {', '.join(KNOWN_FARM_KEYS)}")
    needs_inside = has_lbs or facts.planned
    required = (
        [key for key in ALL_KEYS if key not in OPTIONAL_PLAN_KEYS]
        if facts.planned
        else (*FARM_KEYS, *(["svpn_lb_inside_address"] if has_lbs else []))
    )
    for key in required:
        if key not in farm:
            out.append(f"{key} missing")
    _read_networks(farm, facts, needs_inside, out)
    for key in (
        "svpn_vpn_name",
        "svpn_tunnel_mode",
        "svpn_pki_dir",
        "svpn_pki_passphrase_file",
        "svpn_bundles_dir",
    ):
        if key in farm and not isinstance(farm[key], str):
            out.append(f"{key} must be a string, got {_shown(farm[key])}")
    if "svpn_lab" in farm and not isinstance(farm["svpn_lab"], bool):
        out.append(f"svpn_lab must be true or false, got {_shown(farm['svpn_lab'])}")
    if isinstance(farm.get("svpn_vpn_name"), str):
        _check(out, "", "svpn_vpn_name", lambda: planlib.as_dns_name("svpn_vpn_name", farm["svpn_vpn_name"]))
    mode = farm.get("svpn_tunnel_mode")
    if isinstance(mode, str) and mode not in planlib.TUNNEL_MODES:
        out.append(f"svpn_tunnel_mode: {mode!r}; valid: {', '.join(planlib.TUNNEL_MODES)}")
    well_formed: dict[str, list[str] | None] = {}
    for key in ("svpn_ike_proposals", "svpn_esp_proposals"):
        well_formed[key] = None
        if key in farm:
            if _is_list(farm[key]):
                if _check(out, "", key, lambda k=key: planlib.as_proposals(k, list(farm[k]))) is not None:
                    well_formed[key] = list(farm[key])
            else:
                out.append(f"{key} must be a list of proposals, got {_shown(farm[key])}")
    pfs_optional = farm.get("svpn_esp_pfs_optional", False)
    if not isinstance(pfs_optional, bool):
        out.append(f"svpn_esp_pfs_optional must be true or false, got {_shown(pfs_optional)}")
    # the crypto policy (svpn.farm.proposals): every weak or unknown keyword, every ESP proposal without PFS
    out += proposals.policy_problems(
        well_formed["svpn_ike_proposals"], well_formed["svpn_esp_proposals"], pfs_optional is True
    )
    for item in _farm_list(farm, "svpn_internal_networks", out):
        net = _check(out, "", "svpn_internal_networks", lambda i=item: planlib.as_network("n", i))
        if net is not None:
            facts.internal_networks.append(net)
    for item in _farm_list(farm, "svpn_dns_servers", out):
        _check(out, "", "svpn_dns_servers", lambda i=item: planlib.as_address("a", i))
    for key, role in (("svpn_public_address", "public"), ("svpn_lb_inside_address", "inside")):
        if key not in farm:
            continue
        address = _check(out, "", key, lambda k=key: planlib.as_address(k, farm[k]))
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
    if "svpn_users" in farm:
        facts.users = _check(
            out, "", "svpn_users", lambda: planlib.as_field_number("users", farm["svpn_users"])
        )
    if "svpn_peak_concurrency_percent" in farm:
        facts.concurrency = _check(
            out,
            "",
            "svpn_peak_concurrency_percent",
            lambda: planlib.as_field_number("concurrency_percent", farm["svpn_peak_concurrency_percent"]),
        )
    if facts.planned:
        _read_stored_plan(farm["svpn_plan"], facts, out)
    return facts


def _farm_list(farm: Mapping[str, Any], key: str, out: list[str]) -> list[Any]:
    value = farm.get(key, [])
    if not _is_list(value):
        out.append(f"{key} must be a list, got {_shown(value)}")
        return []
    return list(value)


def _read_networks(farm: Mapping[str, Any], facts: _FarmFacts, needs_inside: bool, out: list[str]) -> None:
    raw = farm.get("svpn_networks")
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        out.append(f"svpn_networks must be a mapping of network name to CIDR, got {_shown(raw)}")
        return
    facts.network_names = [str(name) for name in raw]
    for role in NETWORK_ROLES:
        if role not in raw and (role != "inside" or needs_inside):
            out.append(f"svpn_networks.{role} missing")
    for name, value in raw.items():
        key = f"svpn_networks.{name}"
        net = _check(out, "", key, lambda k=key, v=value: planlib.as_network(k, v))
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
        out.append(f"svpn_plan must be a mapping (the planner's inputs), got {_shown(stored)}")
        return
    for key in sorted(str(k) for k in set(stored) - {*PLAN_KEYS, "limit_sources"}):
        out.append(f"svpn_plan: unknown key {key!r}; valid: {', '.join(PLAN_KEYS)}, limit_sources")
    for key in PLAN_KEYS:
        if key not in stored:
            out.append(f"svpn_plan.{key} missing")
    redundancy = stored.get("redundancy")
    if isinstance(redundancy, str) and redundancy in planlib.REDUNDANCY_SPARES:
        facts.redundancy = redundancy
    elif "redundancy" in stored:
        out.append(f"svpn_plan.redundancy: {redundancy!r}; valid: {', '.join(planlib.REDUNDANCY_SPARES)}")
    if "supernet" in stored:
        facts.supernet = _check(
            out, "", "svpn_plan.supernet", lambda: planlib.as_network("s", stored["supernet"])
        )
    reserved = stored.get("reserved_networks", [])
    if not _is_list(reserved):
        out.append(f"svpn_plan.reserved_networks must be a list, got {_shown(reserved)}")
        reserved = []
    for item in reserved:
        net = _check(out, "", "svpn_plan.reserved_networks", lambda i=item: planlib.as_network("r", i))
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
    out: list[str] = []
    if not isinstance(farm, Mapping):
        return [f"the farm-wide values must be a mapping, got {_shown(farm)}"]
    if not isinstance(hostvars, Mapping):
        return [f"hostvars must be a mapping of host to its variables, got {_shown(hostvars)}"]
    lbs, nodes = _members(groups, LB_GROUP), _members(groups, NODE_GROUP)
    facts = _read_farm(farm, bool(lbs), out)
    if not nodes:
        out.append(f"no concentrators (the group {NODE_GROUP} has no hosts)")
    if facts.planned and sorted(lbs) != list(planlib.LB_NAMES):
        out.append(
            f"loadbalancers are {', '.join(lbs) or 'none'}; the planner's LB pair is "
            f"{' and '.join(planlib.LB_NAMES)}"
        )
    others = [
        str(host)
        for name in (groups if isinstance(groups, Mapping) else {})
        if name not in (LB_GROUP, NODE_GROUP)
        for host in _members(groups, name)
    ]
    owners: dict[ipaddress.IPv4Address, tuple[str, str]] = {}  # address -> (host or "", what uses it)
    for key, vip in (("svpn_public_address", facts.vip), ("svpn_lb_inside_address", facts.inside_vip)):
        if vip is not None:
            owners.setdefault(vip, ("", key))
    pools: dict[str, ipaddress.IPv4Network] = {}
    active = 0
    buckets = None
    for host in dict.fromkeys([*lbs, *nodes, *others]):
        prefix = f"host {host}: "
        is_lb, is_node = host in lbs, host in nodes
        if is_lb and is_node:
            out.append(f"{prefix}both a load balancer and a concentrator (a host is one or the other)")
        host_vars = hostvars.get(host)
        if host_vars is None:
            host_vars = {}
        elif not isinstance(host_vars, Mapping):
            out.append(f"{prefix}its variables must be a mapping, got {_shown(host_vars)}")
            host_vars = {}
        required = [*(["public", "inside"] if is_lb else []), *(["inside"] if is_node and lbs else [])]
        required += ["internal"] if is_node else []
        _check_addresses(host, host_vars, required, is_node, bool(lbs), facts, owners, out)
        if is_node:
            pool = _check_pool(prefix, host_vars, out)
            if pool is not None:
                pools[host] = pool
            state = host_vars.get("concentrator_state", "active")
            if not isinstance(state, str) or state not in NODE_STATES:
                out.append(f"{prefix}concentrator_state: {state!r}; valid: {', '.join(NODE_STATES)}")
            elif state == "active":
                active += 1
            _check_tuning(prefix, host_vars, facts.planned, out)
        if is_lb:
            if "loadbalancer_buckets" in host_vars:
                value = host_vars["loadbalancer_buckets"]
                if _buckets(value, len(nodes)) is None:
                    out.append(
                        f"{prefix}loadbalancer_buckets: {value!r}; give a whole number >= the "
                        f"{len(nodes)} concentrators"
                    )
                elif buckets is None:
                    buckets = value
            elif facts.planned:
                out.append(f"{prefix}loadbalancer_buckets missing")
    if nodes and not active:
        out.append("no concentrator has concentrator_state=active (the LB needs at least one backend)")
    _check_pools(pools, facts, out)
    _check_capacity(facts, pools, buckets or DEFAULT_BUCKETS, out)
    return [_one_line(line) for line in out]


def _one_line(text: str) -> str:
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
        out.append(
            f"{prefix}svpn_addresses must be a mapping of network name to address, got {_shown(block)}"
        )
        block = {}
    for role in dict.fromkeys(required):
        if role not in block:
            hint = " (LBs DNAT to it)" if role == "inside" and is_node else ""
            out.append(f"{prefix}svpn_addresses.{role} missing{hint}")
    for role, value in block.items():
        key = f"svpn_addresses.{role}"
        if facts.network_names is not None and str(role) not in facts.network_names:
            out.append(f"{prefix}{key}: no such network in svpn_networks ({', '.join(facts.network_names)})")
        address = _check(out, prefix, key, lambda k=key, v=value: planlib.as_address(k, v))
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
    pool = _check(
        out, prefix, "concentrator_pool", lambda: planlib.as_network("p", host_vars["concentrator_pool"])
    )
    if pool is not None and planlib.usable_addresses(pool.prefixlen) < 1:
        out.append(
            f"{prefix}concentrator_pool {pool} holds no client addresses "
            f"(the smallest pool is a /{planlib.POOL_PREFIX_MAX})"
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
    failed = planlib.REDUNDANCY_SPARES[facts.redundancy]
    concurrent = math.ceil(facts.users * planlib.frac(facts.concurrency) / 100)
    if len(pools) <= failed:
        out.append(f"{len(pools)} concentrators cannot survive {failed} failures ({facts.redundancy})")
        return
    share = planlib.failover_share(concurrent, len(pools), failed, buckets)
    for name, pool in pools.items():
        usable = planlib.usable_addresses(pool.prefixlen)
        if usable < share:
            out.append(
                f"host {name}: concentrator_pool {pool} holds {usable:,} addresses; after {failed} of "
                f"{len(pools)} nodes fail a survivor may carry {share:,} of the {concurrent:,} concurrent "
                f"users ({facts.redundancy})"
            )


# --------------------------------------------------------------------------- checking inventory files


class Problems(list[str]):
    def add(self, where: str, message: str) -> None:
        self.append(f"{where}: {message}")


def _mapping(problems: Problems, where: str, value: Any, what: str) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    problems.add(where, f"{what} must be a mapping, got {_shown(value)}")
    return None


def _parse_files(files: Mapping[str, str], problems: Problems) -> dict[str, Any]:
    docs: dict[str, Any] = {}
    for path, text in files.items():
        if not path.endswith(".yml"):
            continue
        try:
            data, duplicates = load_yaml(text)
        except ValueError as err:
            problems.add(path, f"not valid YAML: {err}")
            continue
        for duplicate in duplicates:
            problems.add(path, f"{duplicate} (names and keys must be unique)")
        docs[path] = data
    for required in (HOSTS, ALL_VARS):
        if required not in files:
            problems.add(required, "missing")
    return docs


_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_GROUP_KEYS = ("hosts", "vars", "children")


@dataclass
class _Hosts:
    """hosts.yml as Ansible reads it: each group's own hosts, child groups and vars; each host's vars."""

    hosts: dict[str, list[str]] = field(default_factory=lambda: {"all": []})
    children: dict[str, list[str]] = field(default_factory=lambda: {"all": []})
    group_vars: dict[str, dict[str, Any]] = field(default_factory=dict)
    host_vars: dict[str, dict[str, Any]] = field(default_factory=dict)

    def visit(
        self, group: str, body: Any, where: str, problems: Problems, path: frozenset[int] = frozenset()
    ) -> None:
        self.hosts.setdefault(group, [])
        self.children.setdefault(group, [])
        if body is None:
            return
        if id(body) in path:  # a YAML alias of an enclosing group
            problems.add(HOSTS, f"{where}: a group cannot contain itself")
            return
        if not isinstance(body, dict):
            problems.add(HOSTS, f"{where}: {body!r}; a group is a mapping of hosts, vars and children")
            return
        for key in body:
            if key not in _GROUP_KEYS:
                problems.add(HOSTS, f"{where}: unknown key {key!r}; valid: {', '.join(_GROUP_KEYS)}")
        hosts = body.get("hosts") or {}
        if _mapping(problems, HOSTS, hosts, f"{where}.hosts") is None:
            hosts = {}
        for name, inline in hosts.items():
            host = str(name)
            if not _HOST_NAME.fullmatch(host):
                problems.add(
                    HOSTS, f"{where}.hosts.{host}: not a valid host name (letters, digits, ., _ and -)"
                )
            if inline is not None and not isinstance(inline, dict):
                problems.add(
                    HOSTS, f"{where}.hosts.{host}: {inline!r}; a host's entry is a mapping (or empty)"
                )
                inline = None
            if host not in self.hosts[group]:
                self.hosts[group].append(host)
            self.host_vars.setdefault(host, {}).update(inline or {})
        group_vars = body.get("vars") or {}
        if _mapping(problems, HOSTS, group_vars, f"{where}.vars") is not None:
            self.group_vars.setdefault(group, {}).update(group_vars)
        children = body.get("children") or {}
        if _mapping(problems, HOSTS, children, f"{where}.children") is None:
            children = {}
        for name, child in children.items():
            if str(name) not in self.children[group]:
                self.children[group].append(str(name))
            self.visit(str(name), child, f"{where}.children.{name}", problems, path | {id(body)})

    def members(self, group: str, seen: frozenset[str] = frozenset()) -> list[str]:
        """The group's hosts, its child groups' included (as Ansible's ``groups``)."""
        found = list(self.hosts.get(group, []))
        for child in self.children.get(group, []):
            if child not in seen:
                found += self.members(child, seen | {group})
        return list(dict.fromkeys(found))

    def depths(self) -> dict[str, int]:
        depth = {"all": 0}
        todo = ["all"]
        while todo:
            group = todo.pop()
            for child in self.children.get(group, []):
                if depth.get(child, -1) < depth[group] + 1 and depth[group] < len(self.children):
                    depth[child] = depth[group] + 1
                    todo.append(child)
        return depth


def _read_hosts(doc: Any, problems: Problems) -> _Hosts:
    parsed = _Hosts()
    if doc is None:
        return parsed
    root = _mapping(problems, HOSTS, doc, "the document")
    for name, body in (root or {}).items():
        if str(name) != "all" and str(name) not in parsed.children["all"]:
            parsed.children["all"].append(str(name))
        parsed.visit(str(name), body, str(name), problems)
    return parsed


@dataclass(frozen=True)
class FarmInventory:
    """An inventory directory as Ansible sees it: the farm-wide values, groups and hostvars."""

    farm: dict[str, Any]
    groups: dict[str, list[str]]
    hostvars: dict[str, dict[str, Any]]
    docs: dict[str, Any]  # each parsed .yml file (relative path -> data)


def read_farm(files: Mapping[str, str]) -> tuple[FarmInventory, list[str]]:
    """The farm an inventory's files describe, and the problems of the files themselves.

    Variables merge as Ansible merges them: hosts.yml group vars (all, then by depth and name) <
    group_vars/all.yml < group_vars/GROUP.yml < hosts.yml host vars < host_vars/HOST.yml.
    """
    problems = Problems()
    docs = _parse_files(files, problems)
    parsed = _read_hosts(docs.get(HOSTS), problems)
    groups = {group: parsed.members(group) for group in parsed.hosts}
    everyone = list(dict.fromkeys([*groups["all"], *parsed.host_vars]))
    groups["all"] = everyone
    in_a_group = {host for group, hosts in groups.items() if group != "all" for host in hosts}
    groups.setdefault("ungrouped", [])
    groups["ungrouped"] = list(
        dict.fromkeys([*groups["ungrouped"], *(h for h in everyone if h not in in_a_group)])
    )

    def file_vars(path: str) -> dict[str, Any]:
        doc = docs.get(path)
        return doc if isinstance(doc, dict) else {}

    for path in sorted(p for p in docs if p.startswith(("group_vars/", "host_vars/"))):
        if docs[path] is not None:
            _mapping(problems, path, docs[path], "the document")
    for path in sorted(p for p in files if p.startswith("group_vars/")):
        if path.removeprefix("group_vars/").removesuffix(".yml") not in groups:
            problems.add(path, "no such group in hosts.yml")
    for path in sorted(p for p in files if p.startswith("host_vars/")):
        if path.removeprefix("host_vars/").removesuffix(".yml") not in everyone:
            problems.add(path, "no such host in hosts.yml (left over from an earlier plan?)")
    farm = {**parsed.group_vars.get("all", {}), **file_vars(ALL_VARS)}
    if "svpn_plan" in farm:  # the planner writes these files; without them a plan cannot be grown
        if LB_VARS not in files:
            problems.add(LB_VARS, "missing")
        for host in dict.fromkeys([*groups.get(LB_GROUP, []), *groups.get(NODE_GROUP, [])]):
            if host_vars_path(host) not in files:
                problems.add(host_vars_path(host), "missing")
    depth = parsed.depths()
    hostvars: dict[str, dict[str, Any]] = {}
    for host in everyone:
        own = sorted(
            (g for g, hosts in groups.items() if g != "all" and host in hosts),
            key=lambda g: (depth.get(g, 1), g),
        )
        merged: dict[str, Any] = dict(parsed.group_vars.get("all", {}))
        for group in own:
            merged.update(parsed.group_vars.get(group, {}))
        merged.update(file_vars(ALL_VARS))
        for group in own:
            merged.update(file_vars(f"group_vars/{group}.yml"))
        merged.update(parsed.host_vars.get(host, {}))
        merged.update(file_vars(host_vars_path(host)))
        merged.update(inventory_hostname=host, group_names=[g for g in own if g != "ungrouped"])
        hostvars[host] = merged
    return FarmInventory(farm, groups, hostvars, docs), list(problems)


def check_tree(files: Mapping[str, str]) -> list[str]:
    """Every problem of an inventory's files: the files themselves (YAML, layout, leftovers), then
    `farm_problems` of the farm they describe; [] if fine."""
    loaded, problems = read_farm(files)
    return [_one_line(line) for line in problems] + farm_problems(loaded.farm, loaded.groups, loaded.hostvars)


# --------------------------------------------------------------------------- growing an inventory


def existing_farm(files: Mapping[str, str], label: str) -> tuple[dict[str, Any], ExistingFarm, Kept]:
    """An inventory to grow: its stored plan inputs (a layer for plan.resolve_input), its hosts, and what
    the grown files keep from it."""
    problems = check_tree(files)
    if problems:
        raise SvpnError(f"{label}: the inventory to grow has problems: " + "; ".join(problems))
    loaded, _problems = read_farm(files)
    data, docs, hostvars = loaded.farm, loaded.docs, loaded.hostvars
    if "svpn_plan" not in data:
        raise SvpnError(
            f"{label}: not written by `svpn plan` ({ALL_VARS} has no svpn_plan), so there is no plan to "
            "grow; plan a new inventory with `svpn plan --out`"
        )
    layer: dict[str, Any] = {
        ALL_TO_INPUT[key]: data[key] if key in data else OPTIONAL_PLAN_KEYS[key] for key in ALL_TO_INPUT
    }
    layer.update({f"{role}_network": data["svpn_networks"][role] for role in NETWORK_ROLES})
    stored = dict(data["svpn_plan"])
    layer["limit_sources"] = stored.pop("limit_sources", {}) or {}
    layer.update(stored)
    lbs = tuple(
        LoadBalancer(
            name,
            ipaddress.IPv4Address(hostvars[name]["svpn_addresses"]["public"]),
            ipaddress.IPv4Address(hostvars[name]["svpn_addresses"]["inside"]),
            existing=True,
        )
        for name in sorted(loaded.groups[LB_GROUP])
    )
    layer["lb_addresses"] = [str(lb.public) for lb in lbs]
    nodes = tuple(_existing_concentrator(name, hostvars[name]) for name in loaded.groups[NODE_GROUP])
    names = [node.name for node in nodes] + [lb.name for lb in lbs]
    all_file = docs.get(ALL_VARS) or {}
    kept = Kept(
        host_files={
            host_vars_path(name): files[host_vars_path(name)]
            for name in names
            if host_vars_path(name) in files
        },
        hosts=docs[HOSTS],
        all_extra={key: value for key, value in all_file.items() if key not in ALL_KEYS},
        lb_extra={
            key: value for key, value in (docs.get(LB_VARS) or {}).items() if key != "loadbalancer_buckets"
        },
    )
    # fail now, before anything is planned, if something could not be carried over
    data_entries(kept.hosts, HOSTS)
    data_entries(kept.all_extra, ALL_VARS)
    data_entries(kept.lb_extra, LB_VARS)
    return layer, ExistingFarm(nodes, lbs), kept


def _existing_concentrator(name: str, data: Mapping[str, Any]) -> Concentrator:
    tuning = Tuning(**{key.removeprefix("concentrator_"): data[key] for key in TUNING_KEYS})
    return Concentrator(
        name,
        ipaddress.IPv4Network(data["concentrator_pool"]),
        ipaddress.IPv4Address(data["svpn_addresses"]["inside"]),
        ipaddress.IPv4Address(data["svpn_addresses"]["internal"]),
        tuning,
        existing=True,
    )


# --------------------------------------------------------------------------- diff and write


def tree_diff(old: Mapping[str, str], new: Mapping[str, str], label: str) -> str:
    """A unified diff of two file trees (new files come from /dev/null); the chart is summarised."""
    chunks: list[str] = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before == after:
            continue
        if path == CAPACITY_SVG:
            chunks.append(f"--- {label}/{path}: chart {'redrawn' if before is not None else 'added'}\n")
            continue
        chunks += difflib.unified_diff(
            (before or "").splitlines(keepends=True),
            (after or "").splitlines(keepends=True),
            fromfile=f"a/{label}/{path}" if before is not None else "/dev/null",
            tofile=f"b/{label}/{path}" if after is not None else "/dev/null",
        )
    return "".join(chunks)


def stale_host_files(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """host_vars files an earlier plan wrote for hosts the new plan does not have."""
    return sorted(
        path
        for path, text in old.items()
        if path.startswith("host_vars/") and path not in new and text.startswith(GENERATED_MARK)
    )


def write_tree(directory: Path, files: Mapping[str, str], remove: Iterable[str] = ()) -> list[str]:
    """Write changed files (each atomically; hosts.yml last), remove *remove*; the paths changed."""
    directory = Path(directory)
    changed = []
    order = sorted(files, key=lambda path: (path == HOSTS, path))
    for path in order:
        target = directory / path
        if target.is_file() and target.read_text(encoding="utf-8") == files[path]:
            continue
        atomic_write(target, files[path])
        changed.append(path)
    for path in remove:
        os.unlink(directory / path)
        changed.append(path)
    return changed


def summary(files: Mapping[str, str]) -> str:
    """One line about a checked (valid) inventory."""
    loaded, _problems = read_farm(files)
    nodes, lbs = loaded.groups.get(NODE_GROUP, []), loaded.groups.get(LB_GROUP, [])
    others = [host for host in loaded.groups["all"] if host not in nodes and host not in lbs]
    smallest = min(
        planlib.usable_addresses(ipaddress.IPv4Network(loaded.hostvars[n]["concentrator_pool"]).prefixlen)
        for n in nodes
    )
    parts = [f"{len(nodes)} concentrators", f"{len(lbs)} load balancers"]
    if others:
        parts.append(f"{len(others)} other hosts")
    if "svpn_users" in loaded.farm:
        parts.append(f"{loaded.farm['svpn_users']:,} users")
    return f"{', '.join(parts)}; smallest pool {smallest:,} addresses"
