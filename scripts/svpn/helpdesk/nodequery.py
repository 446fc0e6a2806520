"""The shell command the helpdesk sends to every concentrator (through Ansible's raw connection): one round
trip that returns the node's live IKE SAs of the wanted identities and the attempt-log lines of every IKE SA
those identities (or the wanted addresses) had. Pure: builds text, runs nothing.

The command needs only POSIX sh, grep and sed on the node. `grep -F` does the reading (a day's log of a node
with thousands of users is ~100 MB), in four passes:

1. lines naming a wanted identity (as charon quotes it: ``"CN=x"``, ``'x@y'``, ``[x@y]``) give IKE SA ids,
   and the addresses they came from (``...ADDR[ID]``);
2. every line of those SAs;
3. every SA started from those addresses (or from the addresses asked for): attempts that failed before
   the client sent its identity, e.g. on proposals;
4. every line of those SAs.

Its output is sections, each opened by a marker line: ``@@STATE`` (``drained`` when the node refuses new
users, else ``active``), ``@@SAS`` (matching `swanctl --list-sas --raw` lines; ``@@SAS-DOWN`` when charon
does not answer), ``@@LOG`` (the lines, oldest file first; ``@@NOLOG`` when the node keeps no attempt log).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

MARK_STATE, MARK_SAS, MARK_SAS_DOWN, MARK_LOG, MARK_NOLOG = (
    "@@STATE",
    "@@SAS",
    "@@SAS-DOWN",
    "@@LOG",
    "@@NOLOG",
)
LOOKIP = "/usr/lib/ipsec/lookip"  # strongSwan's lookip plugin's client (libcharon-extra-plugins)
MAX_SAS_PER_STEP = 40  # the most recent IKE SAs each step follows: a caller's last attempts, not a month's
MAX_LINES = 4000
LOG_VARIABLE = "{{ concentrator_attempt_log | default('/var/log/svpn/charon.log') }}"
_ADDRESS = re.compile(r"^[0-9a-fA-F:.]+$")


def identity_patterns(identities: Iterable[str]) -> list[str]:
    """How charon's log quotes each identity: in double quotes (certificates), single quotes
    (authentication, leases) and brackets (``ADDR[ID]``)."""
    patterns = []
    for identity in identities:
        patterns += [f'"{identity}"', f"'{identity}'", f"[{identity}]"]
    return patterns


def address_patterns(addresses: Iterable[str]) -> list[str]:
    return [f"> {a} is initiating an IKE_SA" for a in addresses if _ADDRESS.match(a)]


def _grep_args(patterns: Iterable[str]) -> str:
    return " ".join(f"-e {shlex.quote(p)}" for p in patterns)


def node_command(identities: Iterable[str], addresses: Iterable[str] = (), *, logs: bool = True) -> str:
    """The command for one round trip to every node: live SAs of *identities*, and (with *logs*) the
    attempt-log lines of their SAs and of the SAs started from *addresses*."""
    identities, addresses = list(identities), list(addresses)
    lines = [
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin; export LC_ALL=C",
        f"if nft list tables 2>/dev/null | grep -q svpn_drain; then echo '{MARK_STATE} drained'; "
        f"else echo '{MARK_STATE} active'; fi",
        *_sessions_step(identities),
    ]
    if logs:
        lines += _log_steps(identity_patterns(identities), address_patterns(addresses))
    return "\n".join(lines) + "\ntrue\n"


def _sessions_step(identities: list[str]) -> list[str]:
    """The identities' live IKE SAs, without listing every SA (3,300 SAs take charon ~3 s to list): their
    online leases give the virtual IPs, the lookip plugin the IKE SA of each, swanctl that one SA. Where
    lookip is missing, the whole listing, filtered."""
    leases = [f"identity={i} status=online" for i in identities] or ["@@nothing@@"]
    listing = [f"remote-id={i} " for i in identities] or ["@@nothing@@"]
    vip = "sed -n 's/.*address=\\([0-9a-fA-F:.]*\\) identity=.*/\\1/p'"
    sa_id = "sed -n 's/.*\\[\\([0-9][0-9]*\\)\\].*/\\1/p'"
    return [
        f"if ! P=$(swanctl --list-pools --leases --raw 2>/dev/null); then echo '{MARK_SAS_DOWN}'; "
        f"elif [ -x {LOOKIP} ]; then echo '{MARK_SAS}'; "
        f"for v in $(printf '%s\\n' \"$P\" | tr '}}' '\\n' | grep -i -F {_grep_args(leases)} | {vip}); do "
        f'i=$({LOOKIP} --lookup "$v" 2>/dev/null | {sa_id} | head -n 1); '
        f'[ -n "$i" ] && swanctl --list-sas --ike-id "$i" --raw 2>/dev/null | grep \'^list-sa event\'; done; '
        f"else echo '{MARK_SAS}'; swanctl --list-sas --raw 2>/dev/null | grep -i -F {_grep_args(listing)}; "
        "fi",
    ]


def _log_steps(by_identity: list[str], by_address: list[str]) -> list[str]:
    ids = "sed -n 's/^[^<]*<\\([^|>]*|\\)\\{0,1\\}\\([0-9][0-9]*\\)>.*/\\2/p'"
    recent = f"awk '!seen[$0]++' | tail -n {MAX_SAS_PER_STEP}"
    # every line of the SAs whose ids are in $1 (space-separated)
    lines_of = (
        'lines_of() { [ -n "$1" ] || return 0; for i in $1; do printf \'<%s>\\n|%s>\\n\' "$i" "$i"; done'
        ' > "$T/p"; grep -h -F -f "$T/p" $F; }'
    )
    return [
        f"L={LOG_VARIABLE}",
        'F=\'\'; for f in "$L.1" "$L"; do [ -r "$f" ] && F="$F $f"; done',
        f"if [ -z \"$F\" ]; then echo '{MARK_NOLOG}'; exit 0; fi",
        f"echo '{MARK_LOG}'",
        "T=$(mktemp -d); trap 'rm -rf \"$T\"' EXIT",
        lines_of,
        # 1-2: the SAs of the identities, and the addresses they came from: taken from the lines that name
        # both ("...ADDR[ID]"), not from an SA id, which charon reuses after a restart
        f'grep -h -F {_grep_args(by_identity)} $F > "$T/i"' if by_identity else ': > "$T/i"',
        f'A=$({ids} "$T/i" | {recent})',
        'lines_of "$A" > "$T/a"',
        "B=$(sed -n 's/.*\\.\\.\\.\\([0-9a-fA-F:.]*\\)\\[.*/> \\1 is initiating an IKE_SA/p' \"$T/i\" "
        "| awk '!seen[$0]++')",
        # 3-4: every SA started from those addresses or the ones asked for
        f"printf '%s\\n' \"$B\" {' '.join(shlex.quote(p) for p in by_address)} | sed '/^$/d' > \"$T/b\"",
        f'C=$(if [ -s "$T/b" ]; then grep -h -F -f "$T/b" $F | {ids} | {recent}; fi)',
        f'{{ cat "$T/a"; lines_of "$C"; }} | awk \'!seen[$0]++\' | tail -n {MAX_LINES}',
    ]
