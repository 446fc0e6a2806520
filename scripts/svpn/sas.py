"""Read `swanctl --list-sas --raw` output (one vici message per IKE SA) without a vici connection.

Playbooks run swanctl on the node and hand its output to these functions through filter plugins, so the
node needs nothing beyond strongSwan itself.
"""

from __future__ import annotations

import itertools
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


# --------------------------------------------------------------------------- swanctl's text output

_ESTABLISHED = re.compile(r"^(?P<name>[\w.-]+): #(?P<id>\d+), ESTABLISHED", re.M)
_LOCAL_VIP = re.compile(r"^\s+local\s+'[^']*' @ \S+ \[(\d+\.\d+\.\d+\.\d+)\]", re.M)
_REMOTE_VIP = re.compile(r"^\s+remote\s+'[^']*' @ \S+ \[(\d+\.\d+\.\d+\.\d+)\]", re.M)
_PING_REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from", re.M)


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


def longest_gap(ping_output: str) -> tuple[float, int, float]:
    """(longest silence between replies in s, replies, span in s) from `ping -D` output."""
    stamps = [float(t) for t in _PING_REPLY.findall(ping_output)]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    return (max(gaps) if gaps else 0.0), len(stamps), (stamps[-1] - stamps[0] if stamps else 0.0)
