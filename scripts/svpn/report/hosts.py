"""What `svpn report` asks each host, and how it reads the answers. Pure.

The commands extend `svpn status`'s (:mod:`svpn.helpdesk.status_hosts`: charon's counts, pools and
connections on a concentrator; VIPs, daemons and the health view on an LB) with the parts an auditor needs:
the Debian release and package versions, the proposals in the node's swanctl files and the identities of
its live IKE SAs. Every part is printed under the same marker lines, so one round trip per host carries them
all and :func:`svpn.helpdesk.status_hosts.parts` reads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from svpn.helpdesk.status_hosts import CONCENTRATOR_COMMAND, LB_COMMAND, Part, farm_command, part

LIST_SECONDS = 20  # `swanctl --list-sas` on a node with 10,000 SAs
CONCENTRATOR_PACKAGES = (
    "strongswan-swanctl",
    "charon-systemd",
    "strongswan-libcharon",
    "libstrongswan",
    "libstrongswan-standard-plugins",
    "libcharon-extra-plugins",
    "nftables",
)
LB_PACKAGES = ("keepalived", "conntrackd", "nftables", "python3")
SWANCTL_FILES = "/etc/swanctl/swanctl.conf /etc/swanctl/conf.d/*.conf"


def _packages(names: tuple[str, ...]) -> str:
    return f"dpkg-query -W -f='${{Package}} ${{Version}}\\n' {' '.join(names)}"


_RELEASE = part("release", '. /etc/os-release; echo "$ID $VERSION_CODENAME"')
# Each IKE SA's state, negotiated algorithms and remote identity, one line each: STATE|ALGORITHMS|ID (the
# first match of a key is the IKE SA's own: its CHILD_SAs come after it on the line; the identity runs up to
# the next key charon prints after it, initiator-spi for a responder).
_SA_AWK = (
    'function g(re, v) { if (match($0, re)) { v = substr($0, RSTART, RLENGTH); sub(/^ [^=]*=/, "", v); '
    'return v } return "" } '
    '/^list-sa event/ { i = ""; if (match($0, / remote-id=.* initiator-spi=/)) '
    "i = substr($0, RSTART + 11, RLENGTH - 26); "
    'print g(" state=[^ ]+") "|" g(" encr-alg=[^ ]+") "-" g(" encr-keysize=[^ ]+") "-" '
    'g(" integ-alg=[^ ]+") "-" g(" prf-alg=[^ ]+") "-" g(" dh-group=[^ ]+") "|" i }'
)
_IDENTITIES = part(
    "identities", f"timeout {LIST_SECONDS} swanctl --list-sas --raw --noblock | awk '{_SA_AWK}'"
)
CONCENTRATOR_REPORT_COMMAND = "; ".join(
    [
        CONCENTRATOR_COMMAND,
        _RELEASE,
        part("packages", _packages(CONCENTRATOR_PACKAGES)),
        part("proposals", f"grep -HE '^[[:space:]]*(esp_)?proposals[[:space:]]*=' {SWANCTL_FILES}"),
        _IDENTITIES,
    ]
)
LB_REPORT_COMMAND = "; ".join([LB_COMMAND, _RELEASE, part("packages", _packages(LB_PACKAGES))])
FARM_REPORT_COMMAND = farm_command(LB_REPORT_COMMAND, CONCENTRATOR_REPORT_COMMAND)


def parse_packages(part_: Part | None) -> dict[str, str]:
    """Installed package versions by name (a package dpkg knows but is not installed has none: left out)."""
    if part_ is None:
        return {}
    found = {}
    for line in part_.text.splitlines():
        name, _, version = line.strip().partition(" ")
        if name and version.strip() and not name.startswith("dpkg-query"):
            found[name] = version.strip()
    return found


def parse_release(part_: Part | None) -> str:
    """``debian bookworm``, as /etc/os-release says it; "" when unknown."""
    return " ".join(part_.text.split()) if part_ is not None and part_.rc == 0 else ""


@dataclass(frozen=True)
class FileProposals:
    """The proposals one swanctl file on the node gives: ``proposals`` (IKE) and ``esp_proposals``."""

    file: str
    ike: tuple[str, ...]
    esp: tuple[str, ...]


_PROPOSAL_LINE = re.compile(r"^(?P<file>[^:]+):\s*(?P<key>esp_proposals|proposals)\s*=\s*(?P<value>.*)$")


def parse_proposals(part_: Part | None) -> list[FileProposals]:
    """The proposals per swanctl file, from `grep -H` of its ``proposals``/``esp_proposals`` lines."""
    if part_ is None:
        return []
    found: dict[str, dict[str, list[str]]] = {}
    for line in part_.text.splitlines():
        match = _PROPOSAL_LINE.match(line.strip())
        if match is None:
            continue
        values = [v.strip() for v in match["value"].split(",") if v.strip()]
        kind = "esp" if match["key"] == "esp_proposals" else "ike"
        found.setdefault(match["file"], {"ike": [], "esp": []})[kind].extend(values)
    return [FileProposals(f, tuple(v["ike"]), tuple(v["esp"])) for f, v in found.items()]


@dataclass(frozen=True)
class ConnPolicy:
    """What charon has loaded for one connection (`swanctl --list-conns --raw`): what proposals it takes is
    not in that listing, so :class:`FileProposals` carries them from the node's files."""

    name: str
    version: str  # IKEv2
    local_auth: str  # e.g. "public key (vpn.svpn.test, CN=conc1)"
    remote_auth: str  # e.g. "public key, revocation GOOD, policy 2.25.1028339722, CA CN=SVPN lab CA"
    rekey_time: str  # seconds, as charon says it
    children: tuple[str, ...]  # "svpn: TUNNEL, local 198.18.2.0/24, rekey 3600 s"


_CONN_LINE = re.compile(r"^list-conn event \{(?P<name>\S+) \{(?P<body>.*)\}\}$")
_AUTH_CLASS = r"class=(?P<cls>public key|pre-shared key|EAP|XAuth|any)"


def _field(text: str, key: str) -> str:
    match = re.search(rf"(?:^|[ {{]){re.escape(key)}=(\[[^\]]*\]|\S+)", text)
    return match.group(1).strip("[]") if match else ""


def _auth(body: str, side: str) -> str:
    match = re.search(rf"\b{side}-1 \{{(?P<inner>[^{{}}]*)\}}", body)
    if match is None:
        return ""
    inner = match["inner"]
    cls = re.search(_AUTH_CLASS, inner)
    words = [cls["cls"] if cls else "unknown class"]
    for key, label in (
        ("id", "id"),
        ("certs", "cert"),
        ("revocation", "revocation"),
        ("cert_policy", "policy"),
        ("cacerts", "CA"),
    ):
        value = _field(inner, key)
        if value:
            words.append(f"{label} {value}")
    return ", ".join(words)


def parse_conn_policies(text: str) -> list[ConnPolicy]:
    """Each loaded connection's version, authentication and children, from `swanctl --list-conns --raw`."""
    found = []
    for line in text.splitlines():
        match = _CONN_LINE.match(line.strip())
        if match is None:
            continue
        body = match["body"]
        children_at = body.find(" children {")
        head, children = (body, "") if children_at < 0 else (body[:children_at], body[children_at:])
        child_list = []
        for child in re.finditer(r"([^\s{}]+) \{mode=(\S+)(?P<inner>[^{}]*)\}", children):
            local_ts = _field(child["inner"], "local-ts")
            rekey = _field(child["inner"], "rekey_time")
            child_list.append(f"{child[1]}: {child[2]}, local {local_ts or '?'}, rekey {rekey or '?'} s")
        found.append(
            ConnPolicy(
                name=match["name"],
                version=_field(head, "version"),
                local_auth=_auth(head, "local"),
                remote_auth=_auth(head, "remote"),
                rekey_time=_field(head, "rekey_time"),
                children=tuple(child_list),
            )
        )
    return found


@dataclass(frozen=True)
class LiveSa:
    """One IKE SA on a node: its state, the algorithms it negotiated and the remote identity."""

    state: str  # ESTABLISHED, CONNECTING, ...
    algorithms: str  # e.g. "AES_GCM_16-256-PRF_HMAC_SHA2_384-ECP_384" (charon's names)
    identity: str


def parse_sas(part_: Part | None) -> list[LiveSa]:
    """The node's IKE SAs from the identities part (``STATE|ALGORITHMS|IDENTITY`` lines)."""
    if part_ is None:
        return []
    found = []
    for line in part_.text.splitlines():
        fields = line.strip().split("|", 2)
        if len(fields) == 3 and fields[0].isupper():
            algorithms = "-".join(a for a in fields[1].split("-") if a)
            found.append(LiveSa(fields[0], algorithms, fields[2].strip()))
    return found
