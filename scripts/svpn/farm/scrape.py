"""Where the farm's exporters listen and who may scrape them, for the roles' filters (one rule for the
exporter's own role, the node firewalls and the monitoring role's scrape configuration). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DEFAULT_EXPORTER_PORT = 9810  # svpn-exporter on every concentrator and LB (no clash with the usual 9100s)


# The networks an exporter listens on, in order of preference: the inside (LB-facing, management) network of
# a farm behind LBs; a lone concentrator without LBs has none, and is scraped on its internal network.
EXPORTER_NETWORKS = ("inside", "internal")


def exporter_address(addresses: Mapping[str, Any] | None) -> str:
    """The address a host's exporter listens on (and Prometheus scrapes), from its ``svpn_addresses``: the
    first of :data:`EXPORTER_NETWORKS` it has; "" when it has neither (the role's argument check says so)."""
    for network in EXPORTER_NETWORKS:
        if addresses and addresses.get(network):
            return str(addresses[network])
    return ""


def host_addresses(hosts: Iterable[str], hostvars: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every address (``svpn_addresses``) of *hosts*, sorted without repeats: e.g. the monitoring hosts a
    node's firewall lets scrape it, whichever network they reach it on."""
    found = set()
    for host in hosts:
        found |= {str(a) for a in (hostvars[host].get("svpn_addresses") or {}).values()}
    return sorted(found)
