"""The crypto policy in force on a node: what charon has loaded (version, authentication), the proposals in
the node's swanctl files, what its live IKE SAs negotiated, and those proposals in each client's vocabulary
through the project's one mapping table (:func:`svpn.farm.proposals.for_clients`). Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from svpn.core.errors import SvpnError
from svpn.farm.proposals import for_clients
from svpn.report.hosts import ConnPolicy, FileProposals, LiveSa

CLIENT_NAMES = {
    "apple": "Apple (.mobileconfig)",
    "windows": "Windows (Set-VpnConnectionIPsecConfiguration)",
    "android": "strongSwan Android app (.sswan)",
    "networkmanager": "NetworkManager-strongswan",
}


@dataclass(frozen=True)
class ClientView:
    client: str  # one of CLIENT_NAMES' values
    ike: str
    esp: str


@dataclass(frozen=True)
class NodePolicy:
    node: str
    reachable: bool
    conns: tuple[ConnPolicy, ...]
    files: tuple[FileProposals, ...]
    ike: tuple[str, ...]  # the proposals in force (the files', in order)
    esp: tuple[str, ...]
    clients: tuple[ClientView, ...]
    problem: str  # why the proposals break the crypto policy or no client can express them ("" if fine)
    negotiated: dict[str, int] = field(default_factory=dict)  # charon's algorithm names -> IKE SAs


def _dict_text(values: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def client_views(
    ike: Sequence[str], esp: Sequence[str], pfs_optional: bool
) -> tuple[tuple[ClientView, ...], str]:
    """The proposals as each client is told them, or why they cannot be (the crypto policy's own words)."""
    if not ike or not esp:
        return (), "no IKE or no ESP proposal found"
    try:
        chosen = for_clients(list(ike), list(esp), pfs_optional)
    except SvpnError as err:
        return (), str(err)
    views = (
        ClientView(
            CLIENT_NAMES["apple"],
            _dict_text(chosen.apple_ike),
            _dict_text(chosen.apple_child) + ("" if chosen.apple_pfs else " (PFS off)"),
        ),
        ClientView(
            CLIENT_NAMES["windows"],
            _dict_text(
                {k: chosen.windows[k] for k in ("EncryptionMethod", "IntegrityCheckMethod", "DHGroup")}
            ),
            _dict_text(
                {
                    k: chosen.windows[k]
                    for k in ("CipherTransformConstants", "AuthenticationTransformConstants", "PfsGroup")
                }
            ),
        ),
        ClientView(CLIENT_NAMES["android"], chosen.android_ike, chosen.android_esp),
        ClientView(CLIENT_NAMES["networkmanager"], chosen.networkmanager_ike, chosen.networkmanager_esp),
    )
    return views, ""


def node_policy(
    node: str,
    reachable: bool,
    conns: Sequence[ConnPolicy],
    files: Sequence[FileProposals],
    sas: Sequence[LiveSa],
    pfs_optional: bool,
) -> NodePolicy:
    ike = tuple(p for f in files for p in f.ike)
    esp = tuple(p for f in files for p in f.esp)
    clients, problem = client_views(ike, esp, pfs_optional) if reachable else ((), "")
    counts = Counter(sa.algorithms for sa in sas if sa.state == "ESTABLISHED" and sa.algorithms)
    return NodePolicy(node, reachable, tuple(conns), tuple(files), ike, esp, clients, problem, dict(counts))
