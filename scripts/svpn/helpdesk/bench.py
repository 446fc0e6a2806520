"""`svpn helpdesk bench`: how long an agent waits for `svpn status`, `svpn whereis` and `svpn explain` on a
farm, timed as the agent runs them (the whole command, a new process each time), several runs each. Run it
while the load test holds users on the farm (`svpn loadtest --users 10000 --during 'svpn helpdesk bench
...'`) to measure the answers with 10,000 users connected. I/O; the figures' summary is pure."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from svpn.core.errors import SvpnError

# The goals: the caller is on the line.
GOALS = {"whereis": 2.0, "explain": 5.0, "status": 5.0}


@dataclass(frozen=True)
class Timing:
    command: str
    runs: tuple[float, ...]
    goal: float

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def worst(self) -> float:
        return max(self.runs)

    @property
    def met(self) -> bool:
        return self.median < self.goal


def _svpn(args: Sequence[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "svpn", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    return time.monotonic() - started, done


def run(
    inventory: Path,
    pki: Path | None,
    query: str,
    runs: int,
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[list[Timing], int]:
    """Time each command *runs* times; (the timings, the users connected as status counted them)."""
    where = ["--inventory", str(inventory), *(["--pki", str(pki)] if pki else [])]
    commands = {
        "status": ["status", *where, "--json"],
        "whereis": ["whereis", query, *where, "--json"],
        "explain": ["explain", query, *where, "--json"],
    }
    timings, users = [], 0
    for name, args in commands.items():
        seconds = []
        for n in range(runs):
            took, done = _svpn(args)
            if name == "status" and done.returncode in (0, 1):  # 1: problems listed, still a status
                users = sum(int(node.get("users") or 0) for node in json.loads(done.stdout)["nodes"])
            elif done.returncode != 0:
                raise SvpnError(
                    f"svpn {' '.join(args)} failed: {(done.stderr or done.stdout).strip()[-400:]}"
                )
            seconds.append(took)
            progress(f"{name} run {n + 1}/{runs}: {took:.2f} s")
        timings.append(Timing(name, tuple(seconds), GOALS[name]))
    return timings, users


def report(timings: Sequence[Timing], users: int, query: str) -> dict[str, object]:
    return {
        "users_connected": users,
        "query": query,
        "commands": {
            t.command: {
                "median_s": round(t.median, 2),
                "worst_s": round(t.worst, 2),
                "runs_s": [round(s, 2) for s in t.runs],
                "goal_s": t.goal,
                "met": t.met,
            }
            for t in timings
        },
    }
