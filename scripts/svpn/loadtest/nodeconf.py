"""The concentrators' side of a load test as data: their swanctl.conf, the temporary connection and overflow
pools a run loads into their charon, and what of it may be left. Pure logic.

Nothing here touches docker, sockets or files: `svpn.loadtest.nodes` loads and unloads these through vici.
The temporary connection each concentrator gets for the run is a copy of its own ``svpn`` connection (read
from the node's swanctl.conf, so proposals, timers and pool are what the node really runs) that accepts only
the load-test CA's users, plus, where the node's own pool is too small to take its share after a node loss,
a temporary overflow pool. Imports svpn.farm (pool sizes) and svpn.core.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

from svpn.core.errors import SvpnError
from svpn.farm.facts import POOL_RESERVED_ADDRESSES, pool_leases
from svpn.loadtest.names import CA_DN_PREFIX, CONN_NAME, ID_PATTERN, OVERFLOW_POOL_RANGE

# swanctl.conf keys whose comma-separated values are lists in a vici message (as swanctl sends them).
LIST_KEYS = frozenset(
    {
        "local_addrs",
        "remote_addrs",
        "proposals",
        "esp_proposals",
        "ah_proposals",
        "local_ts",
        "remote_ts",
        "vips",
        "pools",
        "groups",
        "cert_policy",
    }
)
# File lists in swanctl.conf (paths on the node): the temporary connection finds the same credentials
# by identity instead, so nothing is loaded twice.
FILE_LIST_KEYS = frozenset({"certs", "cacerts", "pubkeys"})


def parse_swanctl(text: str) -> dict[str, Any]:
    """swanctl.conf / strongswan.conf syntax into nested dicts (sections, `key = value`; no includes)."""
    root: dict[str, Any] = {}
    stack = [root]
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line == "}":
            if len(stack) == 1:
                raise SvpnError(f"swanctl.conf line {number}: '}}' without a section")
            stack.pop()
        elif line.endswith("{") and "=" not in line:
            section: dict[str, Any] = {}
            stack[-1][line[:-1].strip()] = section
            stack.append(section)
        elif "=" in line:
            key, value = line.split("=", 1)
            stack[-1][key.strip()] = value.strip()
        elif line.startswith("include "):
            continue
        else:
            raise SvpnError(f"swanctl.conf line {number}: cannot read {raw.strip()!r}")
    if len(stack) != 1:
        raise SvpnError("swanctl.conf: a section is not closed")
    return root


def vici_value(key: str, value: Any) -> Any:
    """A swanctl.conf value as vici wants it: the keys in LIST_KEYS split at commas, sections recursively."""
    if isinstance(value, dict):
        return {k: vici_value(k, v) for k, v in value.items()}
    if key in LIST_KEYS:
        return [item.strip() for item in str(value).split(",") if item.strip()]
    return value


@dataclass(frozen=True)
class NodePool:
    name: str
    cidr: IPv4Network

    @property
    def usable(self) -> int:
        return pool_leases(self.cidr.prefixlen)


def node_conn(conf: Mapping[str, Any], conn: str = "svpn") -> dict[str, Any]:
    try:
        return dict(conf["connections"][conn])
    except (KeyError, TypeError):
        raise SvpnError(f"the node's swanctl.conf has no connection {conn!r}") from None


def node_pool(conf: Mapping[str, Any], conn: str = "svpn") -> NodePool:
    """The node's own pool: the connection's first pool and its addresses from the `pools` section."""
    pools = vici_value("pools", node_conn(conf, conn).get("pools", ""))
    if not pools:
        raise SvpnError(f"connection {conn!r} has no pool on this node")
    try:
        cidr = IPv4Network(str(conf["pools"][pools[0]]["addrs"]))
    except (KeyError, TypeError, ValueError):
        raise SvpnError(f"pool {pools[0]!r} has no addrs in CIDR form in the node's swanctl.conf") from None
    return NodePool(pools[0], cidr)


@dataclass(frozen=True)
class FarmOffer:
    """What the generators take from a node's own connection: its proposals, its name and its CA."""

    ike_proposals: list[str]
    esp_proposals: list[str]
    vpn_name: str  # the node's local identity: the generators expect it as the remote
    farm_ca_path: str  # the farm CA's certificate on the node (the generators verify the node with it)


def farm_offer(conf: Mapping[str, Any], node: str, conn: str = "svpn") -> FarmOffer:
    """The proposals, local identity and CA of *node*'s connection *conn* (from its parsed swanctl.conf)."""
    source = node_conn(conf, conn)
    proposals = vici_value("proposals", source.get("proposals", ""))
    child = next(iter(source.get("children", {}).values()), {})
    esp = vici_value("esp_proposals", child.get("esp_proposals", ""))
    vpn_name = _section_value(source, "local", "id")
    if not proposals or not esp or not vpn_name:
        raise SvpnError(f"{node}: connection {conn} lacks proposals, esp_proposals or a local id")
    farm_ca = _section_value(source, "remote", "cacerts")
    if not farm_ca:
        raise SvpnError(f"{node}: connection {conn} names no remote cacerts (the farm CA)")
    path = farm_ca if farm_ca.startswith("/") else f"/etc/swanctl/x509ca/{farm_ca}"
    return FarmOffer(list(proposals), list(esp), str(vpn_name), path)


def _section_value(source: Mapping[str, Any], prefix: str, key: str) -> Any:
    """*key* of the first section whose name starts with *prefix* (local, local-1, ...), or None."""
    return next((v.get(key) for k, v in source.items() if k.startswith(prefix) and isinstance(v, dict)), None)


def loadtest_conn(
    conf: Mapping[str, Any], ca_dn: str, pools: Sequence[str], conn: str = "svpn"
) -> dict[str, Any]:
    """The temporary connection for a `load-conn`: the node's own *conn* for load-test users only.

    Everything the node runs is kept (proposals, timers, unique policy, traffic selectors, the local
    identity), so a load-test user costs the node what a real one does. Only the remote side differs:
    the load-test names (ID_PATTERN) from the load-test CA (ca_id: trusted through a temporary
    authority, removed afterwards), and the pools (the node's own, then an overflow pool if any).
    """
    source = node_conn(conf, conn)
    message: dict[str, Any] = {}
    for key, value in source.items():
        if key.startswith("remote"):
            continue
        if key.startswith("local") and isinstance(value, dict):
            message[key] = {k: vici_value(k, v) for k, v in value.items() if k not in FILE_LIST_KEYS}
        elif key == "children" and isinstance(value, dict):
            children = list(value.values())
            if not children:
                raise SvpnError(f"connection {conn!r} has no children")
            message["children"] = {CONN_NAME: vici_value("child", children[0])}
        else:
            message[key] = vici_value(key, value)
    message["remote"] = {
        "auth": "pubkey",
        "id": ID_PATTERN,
        "ca_id": ca_dn,
        # The temporary load-test CA publishes no CRL: the farm's `strict` would refuse every load-test user.
        "revocation": "relaxed",
    }
    message["pools"] = list(pools)
    # Load-test users have names of their own: `replace` would cost the same, but keep them apart.
    message["unique"] = source.get("unique", "no")
    return {CONN_NAME: message}


def overflow_pools(
    pools: Mapping[str, NodePool], users: int, reserved: Iterable[IPv4Network] = ()
) -> dict[str, IPv4Network]:
    """Extra pools for nodes whose own pool cannot hold their share after one node is lost.

    A node's share after a loss is users / (nodes - 1), plus 10 % for the hash's unevenness. Blocks come
    from OVERFLOW_POOL_RANGE, clear of every node pool and anything in *reserved*.
    """
    nodes = sorted(pools)
    if not nodes:
        return {}
    survivors = max(len(nodes) - 1, 1)
    need = math.ceil(users / survivors * 1.1)
    taken = [*reserved, *(pool.cidr for pool in pools.values())]
    result: dict[str, IPv4Network] = {}
    cursor = int(OVERFLOW_POOL_RANGE.network_address)
    end = int(OVERFLOW_POOL_RANGE.broadcast_address) + 1
    for node in nodes:
        deficit = need - pools[node].usable
        if deficit <= 0:
            continue
        size = 1 << max(2, math.ceil(math.log2(deficit + POOL_RESERVED_ADDRESSES)))
        cursor = (cursor + size - 1) // size * size  # aligned
        if cursor + size > end:
            raise SvpnError(
                f"--users: {users} users need overflow pools beyond {OVERFLOW_POOL_RANGE} "
                "(the nodes' own pools are too small); test fewer users or give the nodes larger pools"
            )
        block = IPv4Network((cursor, 32 - int(math.log2(size))))
        if any(block.overlaps(other) for other in taken):
            raise SvpnError(f"overflow pool {block} for {node} overlaps a pool in use")
        result[node] = block
        cursor += size
    return result


def conn_leftovers(conns: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of load-test connections still loaded (from `list-conns` replies)."""
    return sorted(name for entry in conns for name in entry if name == CONN_NAME)


def cert_leftovers(subjects: Iterable[str]) -> list[str]:
    """Load-test certificates (the CA or users) still known to charon (subjects from `list-certs`)."""
    return sorted({s for s in subjects if "svpn-loadtest" in s or s.startswith(CA_DN_PREFIX)})
