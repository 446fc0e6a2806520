"""Facts derived from the inventory that several consumers need (roles via filter plugins, the CLI)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any


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
