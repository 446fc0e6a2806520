"""Read `swanctl --list-sas --raw` output (one vici message per IKE SA) without a vici connection.

Playbooks run swanctl on the node and hand its output to these functions through filter plugins, so the
node needs nothing beyond strongSwan itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SA = re.compile(r"list-sa event \{(?P<name>[\w.-]+) \{(?P<body>.*)\}\}\s*$", re.M)
_NESTED = re.compile(r"[\w-]+ \{(?:[^{}]|\{[^{}]*\})*\}")
# Values are single tokens for what the farm issues (identities are CN=ID, no spaces).
_FIELD = re.compile(r"(?P<key>[\w-]+)=(?P<value>\S+)")


def ike_sas(raw: str) -> list[dict[str, str]]:
    """Top-level fields of each IKE SA: name, uniqueid, remote-id, remote-host, state, …"""
    sas = []
    for match in _SA.finditer(raw):
        body = _NESTED.sub("", match.group("body"))  # the CHILD_SAs
        fields = {m.group("key"): m.group("value") for m in _FIELD.finditer(body)}
        sas.append({"name": match.group("name"), **fields})
    return sas


def sa_ids_of_users(raw: str, users: Iterable[str]) -> list[str]:
    """Unique ids of the IKE SAs whose peer authenticated as one of *users* (certificate CN=ID)."""
    wanted = {f"CN={user}" for user in users}
    return [sa["uniqueid"] for sa in ike_sas(raw) if sa.get("remote-id") in wanted and "uniqueid" in sa]
