"""Read `swanctl --list-sas --raw` output (one vici message per IKE SA) without a vici connection, and find
the IKE SAs of users by every identity their certificates carry.

Playbooks run swanctl on the node and hand its output to these functions through filter plugins, so the
node needs nothing beyond strongSwan itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from svpn.farm.identities import IdentityKey, identity_key

_SA = re.compile(r"list-sa event \{(?P<name>[\w.-]+) \{(?P<body>.*)\}\}\s*$", re.M)
_NESTED = re.compile(r"[\w-]+ \{(?:[^{}]|\{[^{}]*\})*\}")
# --raw writes "key=value" pairs separated by one space, values as they are (a DN has spaces). A field starts
# at " key=" (vici keys: lower case, digits, dashes) unless a comma comes before the space: strongSwan joins
# a DN's attributes with ", ", so "remote-id=C=KR, O=City Hall, CN=a" stays one value.
_FIELD = re.compile(r"(?:^|(?<!,) )(?P<key>[a-z][a-z0-9-]*)=")


def ike_sas(listing: str) -> list[dict[str, str]]:
    """Top-level fields of each IKE SA: name, uniqueid, remote-id, remote-host, state, … (a list such as
    remote-vips as "[a b]"), from `swanctl --list-sas --raw` output."""
    sas = []
    for match in _SA.finditer(listing):
        body = _NESTED.sub("", match.group("body")).strip()  # the CHILD_SAs
        starts = list(_FIELD.finditer(body))
        ends = [m.start() for m in starts[1:]] + [len(body)]
        fields = {m.group("key"): body[m.end() : end].strip() for m, end in zip(starts, ends, strict=True)}
        sas.append({"name": match.group("name"), **fields})
    return sas


def _wanted(identities: Mapping[str, Iterable[str]] | Iterable[str]) -> dict[IdentityKey, str]:
    if isinstance(identities, str):
        raise TypeError("identities: give a list of identities or a mapping of user ID to identities")
    if isinstance(identities, Mapping):
        # An identity two users held (an e-mail given again after a revocation): the first ID by name.
        return {identity_key(i): user for user in sorted(identities, reverse=True) for i in identities[user]}
    return {identity_key(i): "" for i in identities}


def sas_of_identities(
    listing: str, identities: Mapping[str, Iterable[str]] | Iterable[str]
) -> list[dict[str, str]]:
    """The IKE SAs whose peer authenticated as one of *identities*, from `swanctl --list-sas --raw` output:
    ``{"uniqueid", "remote_id", "remote_host", "name", "user"}`` each, in listing order.

    *identities* is a list of identities, or a mapping of user ID to that user's identities (``svpn pki
    identities ID... --json``), which fills in ``user`` ("" for a list). Identities compare as strongSwan
    would: a DN by its attributes (spacing and case do not matter), anything else (e-mail, DNS name)
    ignoring case; see :func:`svpn.farm.identities.identity_key`.
    """
    wanted = _wanted(identities)
    found = []
    for sa in ike_sas(listing):
        remote_id = sa.get("remote-id", "")
        user = wanted.get(identity_key(remote_id)) if "uniqueid" in sa and remote_id else None
        if user is not None:
            found.append(
                {
                    "uniqueid": sa["uniqueid"],
                    "remote_id": remote_id,
                    "remote_host": sa.get("remote-host", ""),
                    "name": sa["name"],
                    "user": user,
                }
            )
    return found


def sessions_ended_by_user(
    nodes: Iterable[Mapping[str, Any]], user: str, fact: str = "concentrator_sessions_ended"
) -> list[dict[str, str]]:
    """What the nodes ended for *user*: each node's *fact* (the :func:`sas_of_identities` it terminated;
    nodes are hostvars, a node without the fact ended nothing), with ``node`` and a one-line ``text``."""
    ended = []
    for node in nodes:
        name = str(node.get("inventory_hostname", "?"))
        for sa in node.get(fact) or []:
            if sa.get("user") == user:
                text = f"{name} IKE SA #{sa['uniqueid']} from {sa['remote_host']} as {sa['remote_id']}"
                ended.append({**sa, "node": name, "text": text})
    return ended


# --------------------------------------------------------------------------- swanctl's text output

_ESTABLISHED = re.compile(r"^(?P<name>[\w.-]+): #(?P<id>\d+), ESTABLISHED", re.M)
_LOCAL_VIP = re.compile(r"^\s+local\s+'[^']*' @ \S+ \[(\d+\.\d+\.\d+\.\d+)\]", re.M)
_REMOTE_VIP = re.compile(r"^\s+remote\s+'[^']*' @ \S+ \[(\d+\.\d+\.\d+\.\d+)\]", re.M)


def client_tunnel(list_sas: str) -> tuple[str, str]:
    """(virtual IP, IKE SA unique id) of a client's established tunnel with an installed CHILD_SA,
    from `swanctl --list-sas` on the client; ("", "") when there is none."""
    sa, vip = _ESTABLISHED.search(list_sas), _LOCAL_VIP.search(list_sas)
    if sa and vip and "INSTALLED" in list_sas:
        return vip.group(1), sa.group("id")
    return "", ""


def remote_vips(list_sas: str) -> list[str]:
    """The virtual IPs a concentrator handed to its peers, from `swanctl --list-sas` on the node."""
    return _REMOTE_VIP.findall(list_sas)


_IKE_SA_COUNT = re.compile(r"IKE_SAs:\s+(\d+) total")


def ike_sa_count(stats: str) -> int | None:
    """How many IKE SAs charon holds, from `swanctl --stats` ("IKE_SAs: 3 total, 0 half-open"); None when
    the output has no such line (charon did not answer), which is not zero."""
    found = _IKE_SA_COUNT.search(stats)
    return int(found.group(1)) if found else None
