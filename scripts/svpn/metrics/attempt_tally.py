"""Setups and failures by cause, counted from charon's attempt log as it grows (the concentrator role's
``concentrator_attempt_log``), with the helpdesk's own classification (svpn.helpdesk.causes: one source of the
cause names). Pure but for :class:`LogFollower`, which reads the file.

An attempt starts at ``ADDR is initiating an IKE_SA``. Established ones count as setups at once and are
forgotten (their later lines are not tracked). Any other attempt is classified when it has been silent for
:data:`SETTLE_SECONDS` (charon writes an attempt's lines within a second or two; the wait lets every line of a
refusal arrive before the cause is chosen). The LBs' health probes (IKE_SA_INIT with proposals the farm
refuses, every second from each LB) come from the addresses given as *ignored* and are never counted.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from svpn.helpdesk.attempts import INITIATING, Attempt, parse_line
from svpn.helpdesk.causes import FAILURES, cause_of

SETTLE_SECONDS = 10.0
MAX_OPEN = 50_000  # attempts tracked at once; beyond it the oldest are classified early


def established(text: str) -> bool:
    return text.startswith("IKE_SA ") and " established between " in text


@dataclass
class AttemptTally:
    node: str = ""
    ignored: frozenset[str] = frozenset()
    setups: int = 0
    failures: Counter[str] = field(default_factory=lambda: Counter({cause: 0 for cause in FAILURES}))
    open: dict[str, Attempt] = field(default_factory=dict)

    def feed(self, raw_lines: Iterable[str]) -> None:
        for raw in raw_lines:
            if "<" not in raw:  # lines of no IKE SA (a cheap test before the regular expression)
                continue
            line = parse_line(raw)
            if line is None or not line.sa:
                continue
            if found := INITIATING.match(line.text):
                if line.sa in self.open:
                    self._finish(self.open.pop(line.sa))
                if found["address"] in self.ignored:
                    continue
                self.open[line.sa] = Attempt(self.node, line.sa)
            attempt = self.open.get(line.sa)
            if attempt is None:
                continue
            attempt.lines.append(line)
            if established(line.text):
                self.setups += 1
                del self.open[line.sa]
        while len(self.open) > MAX_OPEN:
            self._finish(self.open.pop(next(iter(self.open))))

    def settle(self, now: float, wait: float = SETTLE_SECONDS) -> None:
        """Classify the attempts silent for *wait* seconds at *now* (a POSIX time)."""
        for sa in [sa for sa, a in self.open.items() if now - a.ended.timestamp() >= wait]:
            self._finish(self.open.pop(sa))

    def _finish(self, attempt: Attempt) -> None:
        cause = cause_of(attempt)
        if cause in FAILURES:
            self.failures[cause] += 1


class LogFollower:
    """New complete lines of a log file since the last call. Rotation by copytruncate (the file shrank) or by
    a new file (another inode) starts again at the beginning; the first call starts at the end (counters
    count from the exporter's start, as Prometheus expects of a counter)."""

    def __init__(self, path: Path, max_bytes: int = 64 << 20) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.inode: int | None = None
        self.offset = 0
        self.partial = b""
        self.started = False

    def read(self) -> list[str]:
        try:
            status = os.stat(self.path)
        except FileNotFoundError:
            self.inode, self.offset, self.partial = None, 0, b""
            self.started = True
            return []
        if not self.started:
            self.inode, self.offset, self.started = status.st_ino, status.st_size, True
            return []
        if status.st_ino != self.inode or status.st_size < self.offset:
            self.inode, self.offset, self.partial = status.st_ino, 0, b""
        if status.st_size == self.offset:
            return []
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            data = log.read(self.max_bytes)
        self.offset += len(data)
        data, self.partial = self.partial + data, b""
        lines = data.split(b"\n")
        self.partial = lines.pop()
        return [line.decode("utf-8", "replace") for line in lines]
