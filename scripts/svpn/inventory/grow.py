"""Growing an inventory: from a planner's inventory (as Ansible read it: svpn.inventory.tree.load), the stored
plan inputs (a layer for `svpn.planning.inputs.resolve_input`), its hosts as an `ExistingFarm`, what the grown
files keep, where they go (`placed`: an inventory that keeps group_vars/all/ as a directory gets the planner's
farm-wide file as group_vars/all/main.yml), and whether Ansible would see what the planner wrote (`unseen`).

Imports svpn.core.errors, svpn.planning and svpn.inventory's schema, render, read and tree (its data class).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from svpn.core.errors import SvpnError
from svpn.inventory.read import FarmInventory, load_yaml, var_file_owner
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
from svpn.inventory.tree import Loaded
from svpn.inventory.yamlout import Vaulted
from svpn.planning.model import Concentrator, ExistingFarm, LoadBalancer
from svpn.planning.tuning import Tuning


def placed(files: Mapping[str, str], path: str) -> str:
    """Where the planner's var file *path* (group_vars/NAME.yml, host_vars/NAME.yml) goes in the inventory
    *files*: NAME/main.yml if it keeps NAME's variables in a directory (Ansible then ignores NAME.yml)."""
    owner = var_file_owner(path)
    if owner is not None and any(var_file_owner(p) == (owner[0], owner[1], "/") for p in files):
        return f"{owner[0]}/{owner[1]}/main.yml"
    return path


def place_files(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str]:
    """The planner's files *new* at the paths `placed` gives for the inventory *old*."""
    return {placed(old, path): text for path, text in new.items()}


def existing_farm(inventory: Loaded, label: str) -> tuple[dict[str, Any], ExistingFarm, Kept]:
    """An inventory to grow: its stored plan inputs (a layer for svpn.planning.inputs.resolve_input), its
    hosts, and what the grown files keep from it."""
    if inventory.problems or inventory.farm is None:
        raise SvpnError(f"{label}: the inventory to grow has problems: " + "; ".join(inventory.problems))
    loaded, files = inventory.farm, inventory.files
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
    all_file = docs.get(placed(files, ALL_VARS)) or {}
    kept = Kept(
        host_files={
            host_vars_path(name): files[placed(files, host_vars_path(name))]
            for name in names
            if placed(files, host_vars_path(name)) in files
        },
        hosts=docs[HOSTS],
        all_extra={key: value for key, value in all_file.items() if key not in ALL_KEYS},
        lb_extra={
            key: value
            for key, value in (docs.get(placed(files, LB_VARS)) or {}).items()
            if key != "loadbalancer_buckets"
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


def unseen(written: Mapping[str, str], farm: FarmInventory) -> list[str]:
    """The planner's settings in *written* (its var files, as placed) that Ansible, reading the inventory
    they were written into (*farm*), sees otherwise: set again by a file that wins over them, or in a file
    Ansible ignores. One line each; [] if Ansible sees every one."""
    out = []
    for path, text in sorted(written.items()):
        owner = var_file_owner(path)
        if owner is None:
            continue
        kind, name, _way = owner
        if kind == "host_vars":
            seen = farm.hostvars.get(name, {})
        elif name == "all":
            seen = farm.farm
        else:  # a group's variables, as its first host sees them
            seen = next((farm.hostvars[h] for h in farm.groups.get(name, []) if h in farm.hostvars), None)
        if seen is None:
            continue
        data, _duplicates = load_yaml(text)
        for key, value in (data or {}).items():
            found = seen.get(key, _MISSING)
            if not isinstance(value, Vaulted) and found != value:
                shown = "nothing" if found is _MISSING else repr(found)
                out.append(f"{path}: {key}: the plan writes {value!r} but Ansible reads {shown}")
    return out


_MISSING = object()
