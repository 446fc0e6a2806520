"""Live IKE SAs read back from `swanctl --list-sas --raw` lines into :class:`Session` s, and a node's reply
to :func:`svpn.helpdesk.nodequery.node_command` split into its sections. Pure."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from svpn.farm.identities import IdentityKey, identity_key
from svpn.farm.sas import ike_sas
from svpn.helpdesk import nodequery as q
from svpn.helpdesk.answers import Session

_BYTES = re.compile(r"\bbytes-(?P<way>in|out)=(?P<n>\d+)")


@dataclass
class NodeReply:
    state: str = ""  # active, drained, or "" when the node did not say
    charon_down: bool = False
    has_log: bool = True
    sa_lines: list[str] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)


def split_reply(stdout: str) -> NodeReply:
    reply, section = NodeReply(), ""
    for line in stdout.splitlines():
        if line.startswith(q.MARK_STATE):
            reply.state = line[len(q.MARK_STATE) :].strip()
        elif line == q.MARK_SAS:
            section = "sas"
        elif line == q.MARK_SAS_DOWN:
            reply.charon_down, section = True, ""
        elif line == q.MARK_LOG:
            section = "log"
        elif line == q.MARK_NOLOG:
            reply.has_log, section = False, ""
        elif section == "sas" and line.startswith("list-sa event"):
            reply.sa_lines.append(line)
        elif section == "log" and line:
            reply.log_lines.append(line)
    return reply


def sessions_of(
    node: str, sa_lines: list[str], owners: Mapping[IdentityKey, str], now: dt.datetime
) -> list[Session]:
    """The sessions among *sa_lines* whose identity *owners* maps to a user ID (other lines are left out)."""
    found = []
    for line in sa_lines:
        totals = {"in": 0, "out": 0}
        for match in _BYTES.finditer(line):
            totals[match["way"]] += int(match["n"])
        for sa in ike_sas(line):
            user = owners.get(identity_key(sa.get("remote-id", "")))
            if user is None:
                continue
            since = now - dt.timedelta(seconds=int(sa.get("established", "0") or 0))
            found.append(
                Session(
                    user_id=user,
                    node=node,
                    ike_sa=f"{sa['name']}[{sa.get('uniqueid', '?')}]",
                    identity=sa.get("remote-id", ""),
                    virtual_ip=sa.get("remote-vips", "").strip("[]").split(" ")[0],
                    public_address=sa.get("remote-host", ""),
                    connected_since=since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    bytes_in=totals["in"],
                    bytes_out=totals["out"],
                    state=sa.get("state", ""),
                )
            )
    return found
