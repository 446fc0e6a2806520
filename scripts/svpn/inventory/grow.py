"""Growing an inventory: from a planner's inventory, the stored plan inputs (a layer for
`svpn.planning.inputs.resolve_input`), its hosts as an `ExistingFarm`, and what the grown files keep.

Imports svpn.core.errors, svpn.planning and svpn.inventory's schema, render and read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from svpn.core.errors import SvpnError
from svpn.inventory.read import check_tree, read_farm
from svpn.inventory.render import Kept, data_entries
from svpn.inventory.schema import (
    ALL_KEYS,
    ALL_TO_INPUT,
    ALL_VARS,
    HOSTS,
    LB_GROUP,
    LB_VARS,
    NETWORK_ROLES,
    NODE_GROUP,
    OPTIONAL_PLAN_KEYS,
    TUNING_KEYS,
    host_vars_path,
)
from svpn.planning.model import Concentrator, ExistingFarm, LoadBalancer
from svpn.planning.tuning import Tuning


def existing_farm(files: Mapping[str, str], label: str) -> tuple[dict[str, Any], ExistingFarm, Kept]:
    """An inventory to grow: its stored plan inputs (a layer for svpn.planning.inputs.resolve_input), its
    hosts, and what the grown files keep from it."""
    problems = check_tree(files)
    if problems:
        raise SvpnError(f"{label}: the inventory to grow has problems: " + "; ".join(problems))
    loaded, _problems = read_farm(files)
    if "svpn_plan" not in loaded.farm:
        raise SvpnError(
            f"{label}: not written by `svpn plan` ({ALL_VARS} has no svpn_plan), so there is no plan to "
            "grow; plan a new inventory with `svpn plan --out`"
        )
    layer = _stored_inputs(loaded.farm)
    hostvars = loaded.hostvars
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
    kept = _kept(files, loaded.docs, [node.name for node in nodes] + [lb.name for lb in lbs])
    return layer, ExistingFarm(nodes, lbs), kept


def _stored_inputs(data: Mapping[str, Any]) -> dict[str, Any]:
    """The plan inputs a planned inventory stores: its farm-wide values and svpn_plan."""
    layer: dict[str, Any] = {
        ALL_TO_INPUT[key]: data[key] if key in data else OPTIONAL_PLAN_KEYS[key] for key in ALL_TO_INPUT
    }
    layer.update({f"{role}_network": data["svpn_networks"][role] for role in NETWORK_ROLES})
    stored = dict(data["svpn_plan"])
    layer["limit_sources"] = stored.pop("limit_sources", {}) or {}
    layer.update(stored)
    return layer


def _kept(files: Mapping[str, str], docs: Mapping[str, Any], names: Sequence[str]) -> Kept:
    """What the grown files keep; raises now, before anything is planned, if something cannot be kept."""
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
    data_entries(kept.hosts, HOSTS)
    data_entries(kept.all_extra, ALL_VARS)
    data_entries(kept.lb_extra, LB_VARS)
    return kept


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
