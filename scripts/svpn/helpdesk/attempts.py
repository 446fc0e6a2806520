"""charon's attempt log read back: lines into attempts (one IKE SA each), and what each attempt shows. Pure.

A line is ``TIME THREAD[SUBSYSTEM] <CONN|ID> TEXT`` (``<ID>`` before a connection is chosen); the format is
set by the concentrator role (``concentrator_attempt_log``: ISO time with offset, ``ike_name``). The ID is
charon's unique IKE SA id, which starts again at 1 when charon restarts, so an attempt also ends where a new
one with the same id begins (``ADDR is initiating an IKE_SA``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}) (?P<thread>\d+)\[(?P<subsystem>\w+)\] "
    r"(?:<(?:(?P<conn>[^|>]*)\|)?(?P<sa>\d+)> )?(?P<text>.*)$"
)
INITIATING = re.compile(r"^(?P<address>[0-9a-fA-F:.]+) is initiating an IKE_SA")
PEER_CONFIGS = re.compile(
    r"^looking for peer configs matching \S+?\.\.\.(?P<address>[0-9a-fA-F:.]+)\[(?P<id>.*)\]$"
)
AUTHENTICATED = re.compile(r"^authentication of '(?P<id>.*)' with \S+ successful$")
END_ENTITY = re.compile(r'^received end entity cert "(?P<dn>.*)"$')


@dataclass(frozen=True)
class LogLine:
    time: dt.datetime
    sa: str  # charon's IKE SA id ("" for a line of no SA)
    conn: str
    subsystem: str
    text: str
    raw: str


def parse_line(raw: str) -> LogLine | None:
    found = LINE.match(raw.rstrip("\n"))
    if not found:
        return None
    return LogLine(
        time=dt.datetime.strptime(found["time"], "%Y-%m-%dT%H:%M:%S%z"),
        sa=found["sa"] or "",
        conn=found["conn"] or "",
        subsystem=found["subsystem"],
        text=found["text"].strip(),
        raw=raw.rstrip("\n"),
    )


@dataclass
class Attempt:
    """One IKE SA's lines on one node, from the client's first message on."""

    node: str
    sa: str
    lines: list[LogLine] = field(default_factory=list)

    @property
    def started(self) -> dt.datetime:
        return self.lines[0].time

    @property
    def ended(self) -> dt.datetime:
        return self.lines[-1].time

    @property
    def address(self) -> str:
        for line in self.lines:
            if found := INITIATING.match(line.text) or PEER_CONFIGS.match(line.text):
                return found["address"]
        return ""

    @property
    def identity(self) -> str:
        """The identity the client claimed (IKE_AUTH), "" when it never got that far."""
        for line in self.lines:
            if found := PEER_CONFIGS.match(line.text) or AUTHENTICATED.match(line.text):
                return found["id"]
        return ""

    @property
    def certificate(self) -> str:
        """The subject of the certificate the client sent."""
        for line in self.lines:
            if found := END_ENTITY.match(line.text):
                return found["dn"]
        return ""

    def texts(self) -> list[str]:
        return [line.text for line in self.lines]


def attempts_of(node: str, raw_lines: Iterable[str]) -> list[Attempt]:
    """The attempts in a node's lines (oldest first); lines of no IKE SA are left out."""
    current: dict[str, Attempt] = {}
    done: list[Attempt] = []
    for raw in raw_lines:
        line = parse_line(raw)
        if line is None or not line.sa:
            continue
        attempt = current.get(line.sa)
        if attempt is None or (INITIATING.match(line.text) and attempt.lines):
            attempt = current[line.sa] = Attempt(node, line.sa)
            done.append(attempt)
        attempt.lines.append(line)
    return sorted(done, key=lambda a: a.started)
