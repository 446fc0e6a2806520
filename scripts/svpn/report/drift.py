"""Drift: the live farm against its inventory, each difference named (host, what, expected, found). Pure:
works on what the hosts answered (:mod:`svpn.report.hosts`, :mod:`svpn.helpdesk.status_hosts`), the
inventory's variables and the drift play's verdict on each config file (:mod:`svpn.report.playbook`).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from svpn.helpdesk.status_hosts import LbStatus, NodeStatus, Pool
from svpn.report.hosts import FileProposals


@dataclass(frozen=True)
class Difference:
    host: str
    what: (
        str  # "node", "pool", "proposals in /etc/swanctl/conf.d/svpn.conf", "config file ...", "package ..."
    )
    expected: str
    found: str


@dataclass(frozen=True)
class FileCheck:
    """One config file the roles write, as the drift play found it on a host."""

    host: str
    path: str
    state: str  # same, differs, missing, unchecked (the play could not compare it)
    detail: str  # the differing lines (a few), or why it was not compared
    checksum: str = ""  # the host file's SHA-1, as Ansible's template module reports it (same files only)


def node_differences(
    concentrators: Sequence[NodeStatus], lbs: Sequence[LbStatus], inventory_nodes: Sequence[str]
) -> list[Difference]:
    """Hosts the inventory names that do not answer, and LB health views naming nodes the inventory lacks
    (or lacking ones it names)."""
    found = []
    for node in concentrators:
        if not node.reachable:
            found.append(Difference(node.name, "node", "reachable, charon answering", node.why))
        elif node.state == "down":
            found.append(Difference(node.name, "node", "charon serving users", node.why))
    known = set(inventory_nodes)
    for lb in lbs:
        if not lb.reachable:
            found.append(Difference(lb.name, "node", "reachable", lb.why))
            continue
        if not lb.view:
            continue
        seen = {v.node for v in lb.view}
        for extra in sorted(seen - known):
            found.append(
                Difference(lb.name, "LB backends", "only the inventory's concentrators", f"also {extra}")
            )
        for missing in sorted(known - seen):
            found.append(Difference(lb.name, "LB backends", f"{missing} among them", f"{missing} missing"))
    return found


def _pool_text(pool: Pool) -> str:
    return f"{pool.name} base {pool.base}, {pool.size} addresses"


def pool_differences(node: NodeStatus, planned: str) -> list[Difference]:
    """charon's pools on a reachable node against its ``concentrator_pool`` (a CIDR: charon hands out all but
    the network and broadcast addresses)."""
    if not node.reachable or not planned:
        return []
    try:
        network = ipaddress.ip_network(planned, strict=False)
    except ValueError:
        return [Difference(node.name, "pool", f"a CIDR in concentrator_pool, not {planned!r}", "-")]
    usable = network.num_addresses - 2 if network.num_addresses > 2 else network.num_addresses
    expected = f"{network} ({usable} addresses)"
    if not node.pools:
        return [Difference(node.name, "pool", expected, "no pool loaded")]
    matching = [p for p in node.pools if _in(p.base, network) and p.size == usable]
    if matching and len(node.pools) == 1:
        return []
    return [Difference(node.name, "pool", expected, "; ".join(_pool_text(p) for p in node.pools))]


def _in(address: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        return ipaddress.ip_address(address) in network
    except ValueError:
        return False


def proposal_differences(
    node: str, files: Sequence[FileProposals], ike: Sequence[str], esp: Sequence[str]
) -> list[Difference]:
    """The proposals in each of the node's swanctl files against the inventory's lists."""
    found = []
    for file in files:
        for kind, have, want in (("IKE", file.ike, ike), ("ESP", file.esp, esp)):
            if have and list(have) != list(want):
                found.append(
                    Difference(node, f"{kind} proposals in {file.file}", ", ".join(want), ", ".join(have))
                )
    return found


def file_differences(checks: Sequence[FileCheck]) -> list[Difference]:
    """The config files the drift play found differing from what the roles write now."""
    words = {"differs": "differs", "missing": "missing on the host", "unchecked": "not compared"}
    return [
        Difference(
            c.host,
            f"config file {c.path}",
            "as the role writes it from the inventory",
            f"{words[c.state]}{': ' + c.detail if c.detail else ''}",
        )
        for c in checks
        if c.state != "same"
    ]


def package_differences(
    packages: Mapping[str, Mapping[str, str]], releases: Mapping[str, str]
) -> list[Difference]:
    """Package versions that differ between hosts of the same group and Debian release (the inventory pins
    none: the farm's hosts of one release are expected to run the same versions); the version most of them
    run is the expected one."""
    by_release: dict[str, list[str]] = {}
    for host in packages:
        by_release.setdefault(releases.get(host, ""), []).append(host)
    found = []
    for release, hosts in sorted(by_release.items()):
        names = sorted({name for h in hosts for name in packages[h]})
        for name in names:
            versions = Counter(packages[h][name] for h in hosts if name in packages[h])
            if len(versions) < 2:
                continue
            common, _ = versions.most_common(1)[0]
            for host in hosts:
                have = packages[host].get(name)
                if have is not None and have != common:
                    found.append(
                        Difference(host, f"package {name}", f"{common} (as the other {release} hosts)", have)
                    )
    return found
