"""The ramp: every generator sets up its users while the nodes' and generators' CPU and memory are measured.

A driver thread per generator feeds its control socket and reads the progress characters; this module
follows them until every user is up or failed, the generators stop reporting or the time bound runs out,
sampling CPU once a second for the cost curve. The figures come from svpn.loadtest.figures. Imports only
svpn.loadtest's own modules.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from svpn.loadtest.containers import machine_jiffies, process_pid, process_use
from svpn.loadtest.driver import GeneratorDriver
from svpn.loadtest.figures import ProcessUse, ramp_figures
from svpn.loadtest.generators import GeneratorSpec
from svpn.loadtest.nodes import RunNode
from svpn.loadtest.undo import Log, ProgressFn


@dataclass(frozen=True)
class RampUse:
    """CPU and memory over the ramp: each node's and each generator's charon, and the whole machine's CPU."""

    concentrators: dict[str, ProcessUse]
    generators: dict[str, ProcessUse]
    machine: tuple[float, float]  # busy and total jiffies over the ramp


def measured_ramp(
    nodes: dict[str, RunNode],
    specs: list[GeneratorSpec],
    delay: int,
    deadline: float,
    progress: ProgressFn,
    log: Log,
) -> tuple[dict[str, Any], dict[str, GeneratorDriver], RampUse]:
    """The ramp with each charon's use before and after it (*nodes* learn their charon's PID)."""
    for node in nodes.values():
        node.pid = process_pid(node.container, "charon-systemd")
    gen_pids = {spec.name: process_pid(spec.container, "charon") for spec in specs}
    before = {n.name: process_use(n.pid) for n in nodes.values()}
    gen_before = {name: process_use(pid) for name, pid in gen_pids.items()}
    machine_before = machine_jiffies()
    ramp, drivers = run_ramp(
        specs, delay, deadline, progress, log, [n.pid for n in nodes.values()], list(gen_pids.values())
    )
    after = {n.name: process_use(n.pid) for n in nodes.values()}
    gen_after = {name: process_use(pid) for name, pid in gen_pids.items()}
    machine_after = machine_jiffies()
    use = RampUse(
        concentrators={name: ProcessUse.between(before[name], after[name]) for name in nodes},
        generators={name: ProcessUse.between(gen_before[name], gen_after[name]) for name in gen_pids},
        machine=(machine_after[0] - machine_before[0], machine_after[1] - machine_before[1]),
    )
    return ramp, drivers, use


def run_ramp(
    specs: list[GeneratorSpec],
    delay: int,
    deadline: float,
    progress: ProgressFn,
    log: Log,
    node_pids: list[int],
    gen_pids: list[int],
) -> tuple[dict[str, Any], dict[str, GeneratorDriver]]:
    """Start a driver per generator and follow them; the ramp's figures and the (still running) drivers."""
    lock = threading.Lock()
    drivers = {spec.name: GeneratorDriver(spec, delay, lock) for spec in specs}
    start = time.monotonic()
    for driver in drivers.values():
        driver.start()
    total = sum(spec.users for spec in specs)
    samples, timed_out = _follow(drivers, lock, total, deadline, progress, log, (node_pids, gen_pids))
    end = time.monotonic()
    with lock:
        ramp = ramp_figures(
            {name: (d.spec.users, d.progress) for name, d in drivers.items()},
            start,
            end,
            timed_out,
            samples,
            (_cpu_seconds(node_pids), _cpu_seconds(gen_pids)),
        )
    return ramp, drivers


def _follow(
    drivers: dict[str, GeneratorDriver],
    lock: threading.Lock,
    total: int,
    deadline: float,
    progress: ProgressFn,
    log: Log,
    pids: tuple[list[int], list[int]],
) -> tuple[list[tuple[int, float, float]], bool]:
    """Report progress until every user is up or failed, the drivers all stop or the time bound runs out.

    Returns the CPU samples, once a second: (users up, nodes' CPU s, generators' CPU s), and whether the
    time bound ran out. *pids*: the nodes' and the generators' charon.
    """
    samples: list[tuple[int, float, float]] = []
    next_sample = time.monotonic()
    while True:
        with lock:
            up = sum(d.progress.up for d in drivers.values())
            failed = sum(d.progress.failed for d in drivers.values())
        progress("ramp", up + failed, total, up, failed)
        if time.monotonic() >= next_sample:
            samples.append((up, _cpu_seconds(pids[0]), _cpu_seconds(pids[1])))
            next_sample += 1.0
        if up + failed >= total:
            return samples, False
        if time.monotonic() > deadline:
            log("the time bound (--duration) ran out before every user was set up")
            return samples, True
        if all(not d.is_alive() for d in drivers.values()):
            errors = "; ".join(f"{d.spec.name}: {d.error}" for d in drivers.values() if d.error)
            log(f"every generator stopped reporting before the end{': ' + errors if errors else ''}")
            return samples, False
        time.sleep(0.2)


def _cpu_seconds(pids: Iterable[int]) -> float:
    return sum(process_use(pid)[0] for pid in pids)
