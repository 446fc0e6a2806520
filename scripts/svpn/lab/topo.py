"""The lab's hosts and networks, read from an inventory (pure: no docker here)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from svpn.core.errors import SvpnError

TEST_RANGE = ipaddress.ip_network("198.18.0.0/15")
DOCKER_BRIDGE_NET = ipaddress.ip_network("198.19.255.0/24")
NETWORK_PREFIX = "svpn-lab"
# Hosts that route packets for others are created with forwarding on (a container's /proc/sys is
# read-only, so the roles find it already set, as their sysctl.d file says).
FORWARDING_GROUPS = frozenset({"concentrators", "loadbalancers"})


@dataclass(frozen=True)
class LabNetwork:
    name: str
    subnet: ipaddress.IPv4Network

    @property
    def docker_name(self) -> str:
        return f"{NETWORK_PREFIX}-{self.name}"


@dataclass(frozen=True)
class LabHost:
    name: str
    container: str
    groups: frozenset[str]
    addresses: dict[str, ipaddress.IPv4Address] = field(hash=False)
    hostvars: dict[str, Any] = field(hash=False, default_factory=dict)

    @property
    def forwards(self) -> bool:
        return bool(self.groups & FORWARDING_GROUPS)


@dataclass(frozen=True)
class Lab:
    inventory: Path
    networks: dict[str, LabNetwork]
    hosts: list[LabHost]

    def group(self, name: str) -> list[LabHost]:
        return [host for host in self.hosts if name in host.groups]


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        return {}
    except yaml.YAMLError as err:
        raise SvpnError(f"{path}: not valid YAML: {err}") from None


def _walk_groups(name: str, node: dict[str, Any], out: dict[str, set[str]]) -> None:
    for host in (node or {}).get("hosts", {}) or {}:
        out.setdefault(host, set()).add(name)
    for child, sub in ((node or {}).get("children", {}) or {}).items():
        _walk_groups(child, sub, out)


def _host_entries(node: dict[str, Any], out: dict[str, dict[str, Any]]) -> None:
    for host, hvars in ((node or {}).get("hosts", {}) or {}).items():
        out.setdefault(host, {}).update(hvars or {})
    for sub in ((node or {}).get("children", {}) or {}).values():
        _host_entries(sub, out)


def load_lab(inventory: Path) -> Lab:
    """Read hosts, networks and addresses; refuse anything outside the lab's test range."""
    inventory = Path(inventory)
    hosts_doc = _read_yaml(inventory / "hosts.yml")
    farm = _read_yaml(inventory / "group_vars" / "all.yml")
    if farm.get("svpn_lab") is not True:
        raise SvpnError(f"{inventory}: not a lab inventory (group_vars/all.yml must say svpn_lab: true)")
    networks: dict[str, LabNetwork] = {}
    for name, cidr in (farm.get("svpn_networks") or {}).items():
        try:
            subnet = ipaddress.ip_network(str(cidr), strict=True)
        except ValueError:
            raise SvpnError(f"svpn_networks.{name}: {cidr!r} is not a network in CIDR form") from None
        if not subnet.subnet_of(TEST_RANGE) or subnet.overlaps(DOCKER_BRIDGE_NET):
            raise SvpnError(
                f"svpn_networks.{name}: {subnet} must lie inside {TEST_RANGE} and outside "
                f"{DOCKER_BRIDGE_NET} (docker's bridge)"
            )
        networks[name] = LabNetwork(name, subnet)
    groups: dict[str, set[str]] = {}
    _walk_groups("all", hosts_doc.get("all", {}), groups)
    entries: dict[str, dict[str, Any]] = {}
    _host_entries(hosts_doc.get("all", {}), entries)
    hosts = []
    for name in sorted(groups):
        hvars = {**entries.get(name, {}), **_read_yaml(inventory / "host_vars" / f"{name}.yml")}
        addresses = {}
        for net, addr in (hvars.get("svpn_addresses") or {}).items():
            if net not in networks:
                raise SvpnError(f"host {name}: svpn_addresses.{net}: no such network in svpn_networks")
            try:
                ip = ipaddress.ip_address(str(addr))
            except ValueError:
                raise SvpnError(f"host {name}: svpn_addresses.{net}: {addr!r} is not an address") from None
            if ip not in networks[net].subnet:
                raise SvpnError(f"host {name}: svpn_addresses.{net}: {ip} is outside {networks[net].subnet}")
            addresses[net] = ip
        if not addresses:
            raise SvpnError(f"host {name}: svpn_addresses is empty: a lab host needs at least one network")
        hosts.append(
            LabHost(
                name=name,
                container=str(hvars.get("ansible_host", f"{NETWORK_PREFIX}-{name}")),
                groups=frozenset(groups[name] - {"all"}),
                addresses=addresses,
                hostvars=hvars,
            )
        )
    return Lab(inventory=inventory, networks=networks, hosts=hosts)
