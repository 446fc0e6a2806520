"""Facts derived from the inventory that several consumers need (roles via filter plugins, the CLI)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from svpn.farm.facts import ACTIVE, DEFAULT_NODE_STATE, NODE_STATES


def pool_routes(
    hostvars: Mapping[str, Mapping[str, Any]], nodes: Iterable[str], network: str
) -> list[dict[str, str]]:
    """Routes an internal host needs: each concentrator's pool via that node's address on *network*."""
    routes = []
    for node in sorted(nodes):
        facts = hostvars[node]
        pool = ipaddress.ip_network(str(facts["concentrator_pool"]), strict=True)
        via = ipaddress.ip_address(str(facts["svpn_addresses"][network]))
        routes.append({"network": str(pool), "via": str(via)})
    return routes


def backends(
    hostvars: Mapping[str, Mapping[str, Any]], nodes: Iterable[str], network: str
) -> list[dict[str, str]]:
    """The LB's view of each concentrator: name, address on *network*, admin state (active|drain)."""
    rows = []
    for node in sorted(nodes):
        facts = hostvars[node]
        state = str(facts.get("concentrator_state", DEFAULT_NODE_STATE))
        if state not in NODE_STATES:
            valid = ", ".join(NODE_STATES)
            raise ValueError(f"host {node}: concentrator_state: {state!r} is not one of {valid}")
        address = ipaddress.ip_address(str(facts["svpn_addresses"][network]))
        rows.append({"name": node, "address": str(address), "state": state})
    return rows


def bucket_map(rows: Iterable[Mapping[str, str]], buckets: int) -> list[dict[str, Any]]:
    """Bucket → backend address for the nodes that take new flows (all active ones)."""
    from svpn.farm.buckets import bucket_owners

    active = {row["name"]: row["address"] for row in rows if row["state"] == ACTIVE}
    owners = bucket_owners(sorted(active), buckets)
    return [
        {"bucket": bucket, "node": owner, "address": active[owner]} for bucket, owner in enumerate(owners)
    ]


def interface_of(facts: Mapping[str, Any], address: str) -> str:
    """The interface holding *address*, from Ansible's network facts."""
    for name in facts.get("interfaces", []):
        iface = facts.get(name.replace("-", "_").replace(".", "_"), {})
        addrs = [iface.get("ipv4", {}), *iface.get("ipv4_secondaries", [])]
        if any(a.get("address") == str(address) for a in addrs):
            return str(name)
    raise ValueError(f"no interface holds {address} (interfaces: {', '.join(facts.get('interfaces', []))})")
