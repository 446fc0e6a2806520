"""A maintenance run under load: with every load-test user up, run an operator's command (a rolling upgrade,
a certificate rotation, a redeploy) and count the users through it and after it.

While the command runs, each node's charon is watched: a restarted charon (a new PID) has lost the run's
temporary credentials and connection, which live only in its memory, so they are loaded again at once; the
real farm configuration came back with the restart. After the command, the users have a bounded time to
come back (their generators re-establish when a node deletes their SA or stops answering). The report says
how many were up before, the fewest up at any moment, how many after, and when all were back.
Imports svpn.core.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svpn.core.errors import SvpnError
from svpn.loadtest.undo import Log, ProgressFn

Counter = Callable[[], dict[str, set[str]]]  # the load-test users (identities) each node carries
Exact = Callable[[], dict[str, int]]  # complete load-test SAs each node holds (exact, slower)
Pids = Callable[[], dict[str, int]]  # each node's charon PID (0: not running)
Reload = Callable[[str], None]  # load the run's temporary credentials and connection into that node again


@dataclass
class Watch:
    """What the watch saw while the command ran and after it."""

    # [seconds since the command began, users up (distinct identities over all nodes)]
    timeline: list[list[float]] = field(default_factory=list)
    reloaded: dict[str, int] = field(default_factory=dict)  # node -> times its restarted charon was reloaded
    # node -> its last failed reload (dropped once one works)
    reload_errors: dict[str, str] = field(default_factory=dict)


def restarted(before: dict[str, int], now: dict[str, int]) -> list[str]:
    """The nodes whose charon runs under a new PID (restarted since *before*); a stopped one is not yet."""
    return sorted(name for name, pid in now.items() if pid and pid != before.get(name))


def during(
    command: str,
    users: int,
    counter: Counter,
    exact: Exact,
    pids: Pids,
    reload: Reload,
    settle: float,
    deadline: float,
    output: Path,
    progress: ProgressFn,
    log: Log,
) -> dict[str, Any]:
    """Run *command* (a shell command line) with *users* up; the figures of the users through it."""
    seen = Watch()
    stop = threading.Event()
    start = time.monotonic()
    watcher = threading.Thread(
        target=_watch, args=(seen, stop, start, users, counter, pids, reload, progress, log), daemon=True
    )
    watcher.start()
    log(f"during: running {command!r} with {users} load-test users up (output: {output})")
    try:
        rc, seconds = _run(command, output, deadline)
        # the users' bounded time to come back; the watch goes on
        settle_end = min(deadline, time.monotonic() + settle)
        after = exact()
        while sum(after.values()) < users and time.monotonic() < settle_end:
            time.sleep(2)
            after = exact()
    finally:
        stop.set()
        watcher.join(timeout=30)
    up_after = sum(after.values())
    return {
        "command": command,
        "output": str(output),
        "exit_code": rc,
        "seconds": round(seconds, 1),
        "users_before": users,
        "users_lowest": min((up for _, up in seen.timeline), default=users),
        "users_after": up_after,
        "per_node_after": after,
        "all_back_s": (round(time.monotonic() - start, 1) if up_after >= users else None),
        "reloaded": seen.reloaded,
        "reload_errors": seen.reload_errors,
        "timeline": seen.timeline,
    }


def _run(command: str, output: Path, deadline: float) -> tuple[int, float]:
    started = time.monotonic()
    left = deadline - started
    if left <= 0:
        raise SvpnError("--during: no time left in --duration for the command; give a longer --duration")
    with open(output, "w") as out:
        try:
            done = subprocess.run(  # the operator's own command line, run as given
                command, shell=True, stdout=out, stderr=subprocess.STDOUT, timeout=left, check=False
            )
            rc = done.returncode
        except subprocess.TimeoutExpired:
            out.write(f"\nsvpn loadtest: --during command stopped at the --duration bound ({left:.0f} s)\n")
            rc = -1
    return rc, time.monotonic() - started


def _watch(
    seen: Watch,
    stop: threading.Event,
    start: float,
    users: int,
    counter: Counter,
    pids: Pids,
    reload: Reload,
    progress: ProgressFn,
    log: Log,
) -> None:
    known = pids()
    while not stop.is_set():
        now_pids = pids()
        for name in restarted(known, now_pids):
            try:
                reload(name)
            except (SvpnError, OSError) as err:  # charon may not answer yet: retried on the next round
                seen.reload_errors[name] = str(err)
                continue
            seen.reload_errors.pop(name, None)
            seen.reloaded[name] = seen.reloaded.get(name, 0) + 1
            log(f"during: {name}'s charon restarted; the run's connection is loaded again")
            known[name] = now_pids[name]
        # a user is one identity, also while a drained node still holds its old SA
        up = len(set().union(*counter().values()))
        seen.timeline.append([round(time.monotonic() - start, 1), up])
        progress("during", min(up, users), users, up, 0)
        stop.wait(1.0)
