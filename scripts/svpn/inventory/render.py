"""A plan as inventory files: hosts.yml, group_vars/, host_vars/ (each value with a comment saying how it
was derived), CAPACITY.md and its chart; when growing, what the existing inventory keeps. Pure: it maps
relative paths to file texts.

Imports svpn.core.errors, svpn.planning and svpn.inventory's schema and yamlout.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from svpn.core.errors import SvpnError
from svpn.inventory.schema import (
    ALL_VARS,
    CAPACITY_MD,
    CAPACITY_SVG,
    GENERATED_MARK,
    HOSTS,
    LB_VARS,
    NETWORK_ROLES,
    PLAN_KEYS,
    host_vars_path,
)
from svpn.inventory.yamlout import Entry, Vaulted, emit_yaml
from svpn.planning import capacity_doc
from svpn.planning.defaults import LIMIT_KEYS
from svpn.planning.layout import CONCENTRATOR_FIRST_OFFSET, LB_NAMES, LB_VRRP_PRIORITIES
from svpn.planning.model import Concentrator, LoadBalancer, Plan
from svpn.planning.numbers import fmt, frac
from svpn.planning.tuning import Tuning


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
    if isinstance(value, (*scalar, Vaulted)):
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
    sources = Entry("limit_sources", tuple(Entry(key, inp.source(key)) for key in LIMIT_KEYS))
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
            "svpn_management_networks",
            list(inp.management_networks),
            "Where SSH to the farm's hosts comes from (the controller, admins' jump hosts): the only "
            "SSH the roles' firewalls accept. Empty closes SSH, which the checks refuse for hosts managed "
            "over SSH.",
        ),
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
            "Buckets of the LB's source-address hash table. The owners are not stored here: "
            "svpn.farm.buckets computes them from this inventory's concentrators (and their health) "
            "at deploy time; "
            f"CAPACITY.md shows the split ({fmt(plan.buckets / plan.node_count)} per node "
            "on average).",
        )
    ]


def concentrator_entries(plan: Plan, node: Concentrator) -> list[Entry]:
    inp = plan.input
    tuning = node.tuning
    how = tuning.explain(inp.cores, node.pool_addresses, inp.cores * frac(inp.setup_rate_per_core))
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
            f"(concentrators take the first free hosts from .{CONCENTRATOR_FIRST_OFFSET}).",
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
    priority = LB_VRRP_PRIORITIES[LB_NAMES.index(lb.name)]
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
            f"lb1 {LB_VRRP_PRIORITIES[0]}, lb2 {LB_VRRP_PRIORITIES[1]}: lb1 holds both VIPs "
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
    files = render_inventory(plan, kept)
    files[CAPACITY_MD] = capacity_doc.render_markdown(plan, CAPACITY_SVG)
    files[CAPACITY_SVG] = capacity_doc.render_svg(plan)
    return dict(sorted(files.items()))
