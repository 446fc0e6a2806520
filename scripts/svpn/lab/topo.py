"""The lab's hosts and networks, read from an inventory by ansible-core (svpn.core.ansible_inventory); no
docker here."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svpn.core.ansible_inventory import ANSIBLE_WAY, VaultOptions, read_inventory
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
    farm: dict[str, Any] = field(default_factory=dict)  # the group all's variables

    def group(self, name: str) -> list[LabHost]:
        return [host for host in self.hosts if name in host.groups]


def load_lab(inventory: Path, vault: VaultOptions = ANSIBLE_WAY) -> Lab:
    """Read hosts, networks and addresses (the inventory as Ansible reads it: svpn.core.ansible_inventory);
    refuse anything outside the lab's test range."""
    inventory = Path(inventory)
    read = read_inventory(inventory, vault)
    farm = read.all_vars
    if farm.get("svpn_lab") is not True:
        raise SvpnError(f"{inventory}: not a lab inventory (group_vars/all must say svpn_lab: true)")
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
    hosts = []
    for name in sorted(read.hostvars):
        hvars = read.hostvars[name]
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
                groups=frozenset(hvars.get("group_names", [])),
                addresses=addresses,
                hostvars=hvars,
            )
        )
    return Lab(inventory=inventory, networks=networks, hosts=hosts, farm=farm)
