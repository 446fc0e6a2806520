"""What a load test measured, as figures: the generators' progress stream, processes' CPU and memory from
/proc, users per node, setup rate, the reconnect storm's milestones and the planner's calibration. Pure logic.

Nothing here reads /proc or a socket: `svpn.loadtest.containers` and `svpn.loadtest.driver` read them and
hand the text here; `svpn.loadtest.ramp` and `svpn.loadtest.storm` take the samples. The progress stream
is the patched load-tester plugin's control socket; the calibration is what `svpn plan --calibration
REPORT` reads. Imports nothing of svpn.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SPREAD_LIMIT_PCT = 10.0


# The letter the patched control socket prints after "-" for a user whose IKE SA failed.
REASONS: dict[str, str] = {
    "T": "no answer (retransmits exhausted)",
    "H": "half-open timeout",
    "A": "the concentrator rejected the user (AUTHENTICATION_FAILED)",
    "R": "the generator rejected the concentrator's authentication",
    "C": "certificate validation failed",
    "P": "no IKE proposal chosen",
    "Q": "no ESP proposal chosen",
    "S": "traffic selectors unacceptable",
    "V": "no virtual IP assigned",
    "K": "CHILD SA could not be set up",
    "E": "malformed or unknown message (parse error, invalid SPI)",
    "N": "peer address failed",
    "Z": "authorization failed",
    "L": "the generator could not start the IKE SA",
    "?": "deleted before it was established, no reason given",
}


# --------------------------------------------------------------------------- progress stream


@dataclass
class GeneratorProgress:
    """What one generator's control socket said: "." initiated, "+" up, "-X" failed (X a REASONS key),
    "*" a retransmit, "!" could not initiate."""

    initiated: int = 0
    up: int = 0
    retransmits: int = 0
    failures: Counter = field(default_factory=Counter)
    up_times: list[float] = field(default_factory=list)
    fail_times: list[float] = field(default_factory=list)
    _minus: bool = False

    def feed(self, text: str, now: float) -> None:
        for char in text:
            if self._minus:
                self._minus = False
                self.failures[char if char in REASONS else "?"] += 1
                self.fail_times.append(now)
                continue
            if char == ".":
                self.initiated += 1
            elif char == "+":
                self.up += 1
                self.up_times.append(now)
            elif char == "-":
                self._minus = True
            elif char == "*":
                self.retransmits += 1
            elif char == "!":
                self.failures["L"] += 1
                self.fail_times.append(now)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def done(self) -> int:
        return self.up + self.failed


# --------------------------------------------------------------------------- /proc readers


def proc_cpu_seconds(stat_text: str, clock_ticks: int) -> float:
    """utime + stime of a process (all threads) from /proc/PID/stat."""
    fields = stat_text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / clock_ticks


def proc_rss_kib(status_text: str) -> int:
    found = re.search(r"^VmRSS:\s+(\d+) kB", status_text, re.M)
    return int(found.group(1)) if found else 0


def machine_cpu(stat_text: str) -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    values = [int(v) for v in stat_text.splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return float(sum(values) - idle), float(sum(values))


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Spread:
    counts: dict[str, int]
    mean: float
    max_deviation_pct: float

    def within(self, limit_pct: float = SPREAD_LIMIT_PCT) -> bool:
        return self.max_deviation_pct <= limit_pct


def spread(counts: Mapping[str, int]) -> Spread:
    if not counts:
        return Spread({}, 0.0, 0.0)
    mean = sum(counts.values()) / len(counts)
    deviation = max(abs(c - mean) for c in counts.values()) / mean * 100 if mean else 0.0
    return Spread(dict(counts), round(mean, 1), round(deviation, 2))


def rate_timeline(times: Sequence[float], start: float, step: float = 1.0) -> list[list[float]]:
    """[[seconds since start, setups in that step per second, total so far], ...]."""
    if not times:
        return []
    buckets = Counter(int((t - start) // step) for t in times)
    rows, total = [], 0
    for index in range(max(buckets) + 1):
        total += buckets.get(index, 0)
        rows.append([round((index + 1) * step, 3), round(buckets.get(index, 0) / step, 1), total])
    return rows


def storm_milestones(timeline: Sequence[Sequence[float]], lost: int) -> dict[str, float | None]:
    """When the first, half and all of *lost* users were back, from [[seconds, back], ...] samples."""

    def first_at(share: float) -> float | None:
        need = max(1, math.ceil(lost * share))
        return next((float(t) for t, back in timeline if back >= need), None)

    return {"first_back_s": first_at(0), "half_back_s": first_at(0.5), "all_back_s": first_at(1.0)}


def time_to_count(times: Sequence[float], start: float, count: int) -> float | None:
    """Seconds from *start* until *count* events had happened, or None if they never did."""
    if count <= 0:
        return 0.0
    if len(times) < count:
        return None
    return round(sorted(times)[count - 1] - start, 2)


@dataclass(frozen=True)
class ProcessUse:
    """A process's CPU and memory over a phase."""

    cpu_s: float
    rss_kib_before: int
    rss_kib_after: int

    @classmethod
    def between(cls, before: tuple[float, int], after: tuple[float, int]) -> ProcessUse:
        """From two (CPU seconds, RSS KiB) readings of the process, at the phase's start and end."""
        return cls(after[0] - before[0], before[1], after[1])


def per_user_figures(use: ProcessUse, users: int) -> dict[str, float | int | None]:
    if users <= 0:
        return {
            "users": users,
            "cpu_s": round(use.cpu_s, 2),
            "cpu_ms_per_setup": None,
            "rss_kib_per_user": None,
        }
    return {
        "users": users,
        "cpu_s": round(use.cpu_s, 2),
        "cpu_ms_per_setup": round(use.cpu_s * 1000 / users, 3),
        "cpu_s_per_1000_users": round(use.cpu_s * 1000 / users, 3),
        "rss_kib_before": use.rss_kib_before,
        "rss_kib_after": use.rss_kib_after,
        "rss_kib_per_user": round((use.rss_kib_after - use.rss_kib_before) / users, 1),
        "rss_mib_per_1000_users": round((use.rss_kib_after - use.rss_kib_before) / users * 1000 / 1024, 1),
    }


def cost_curve(samples: Sequence[Sequence[float]], step: int) -> list[dict[str, float | int]]:
    """CPU per setup as the users accumulate: from (users up, nodes' CPU s, generators' CPU s) samples,
    one row per *step* users: the marginal milliseconds per setup of the nodes and the generators."""
    rows: list[dict[str, float | int]] = []
    if not samples:
        return rows
    last = samples[0]
    for sample in samples[1:]:
        if sample[0] - last[0] >= step or (sample is samples[-1] and sample[0] > last[0]):
            users = sample[0] - last[0]
            rows.append(
                {
                    "users_up": int(sample[0]),
                    "nodes_ms_per_setup": round((sample[1] - last[1]) * 1000 / users, 2),
                    "generators_ms_per_setup": round((sample[2] - last[2]) * 1000 / users, 2),
                }
            )
            last = sample
    return rows


def machine_figures(
    jiffies: tuple[float, float],
    concentrators: Mapping[str, Mapping[str, Any]],
    generators: Mapping[str, Mapping[str, Any]],
    cores: int | None,
) -> dict[str, Any]:
    """How busy the machine was over a phase (*jiffies*: busy and total over it) and the generators' share
    of the CPU the farm and the generators used (from their :func:`per_user_figures`)."""
    busy, total = jiffies
    conc_cpu = sum(r["cpu_s"] for r in concentrators.values())
    gen_cpu = sum(r["cpu_s"] for r in generators.values())
    return {
        "cores": cores,
        "busy_pct": round(busy / total * 100, 1) if total else 0.0,
        "concentrators_cpu_s": round(conc_cpu, 2),
        "generators_cpu_s": round(gen_cpu, 2),
        "generator_share_pct": round(gen_cpu / (gen_cpu + conc_cpu) * 100, 1) if gen_cpu + conc_cpu else 0.0,
    }


def ramp_figures(
    generators: Mapping[str, tuple[int, GeneratorProgress]],
    start: float,
    end: float,
    timed_out: bool,
    samples: Sequence[Sequence[float]],
    end_cpu: tuple[float, float],
) -> dict[str, Any]:
    """The ramp's part of the report, from each generator's (users, progress) by name.

    *samples*: (users up, nodes' CPU s, generators' CPU s) taken during the ramp; *end_cpu*: the nodes' and
    the generators' CPU s at its end. Times are monotonic seconds, like the progress stream's.
    """
    total = sum(users for users, _ in generators.values())
    progresses = [progress for _, progress in generators.values()]
    up_times = sorted(t for progress in progresses for t in progress.up_times)
    failures: dict[str, int] = {}
    for progress in progresses:
        for key, count in progress.failures.items():
            failures[key] = failures.get(key, 0) + count
    return {
        "up": len(up_times),
        "failed": sum(failures.values()),
        "failures": failure_table(failures),
        "failure_codes": failures,
        "retransmits": sum(progress.retransmits for progress in progresses),
        "time_to_all_up_s": time_to_count(up_times, start, total),
        "time_to_half_up_s": time_to_count(up_times, start, (total + 1) // 2),
        "elapsed_s": round(end - start, 2),
        "timed_out": timed_out,
        "mean_rate_per_s": round(len(up_times) / (up_times[-1] - start), 1) if up_times else 0.0,
        "cost_curve": cost_curve([*samples, (len(up_times), *end_cpu)], step=max(total // 10, 1)),
        "setup_rate": rate_timeline(up_times, start),
        "per_generator": {
            name: {"users": users, "up": progress.up, "failed": progress.failed}
            for name, (users, progress) in generators.items()
        },
    }


def calibration(
    nodes: Mapping[str, Mapping[str, Any]],
    with_rss: bool = True,
    curve: Sequence[Mapping[str, Any]] = (),
) -> dict[str, float | int]:
    """The planner's limits derived from the concentrators' measurements (only what was measured).

    setup_rate_per_core: setups one core of a node completes per second. From the first step of the
    cost *curve* when there is one: later steps include the lab's userspace ESP (kernel-libipsec), which
    keeps SAs in lists, so its cost per setup grows with the SAs a node holds; production nodes use the
    kernel's ESP. Otherwise from all nodes' CPU over all their setups (rounded down).
    rss_kib_per_user: the largest node's memory per user (rounded up), only
    *with_rss* (a charon that held more users before keeps that memory, so only a fresh one tells).
    esp_gbps_per_core and ike_sas_per_node are not measured by a setup test and stay the planner's.
    """
    cpu = sum(float(n["cpu_s"]) for n in nodes.values())
    users = sum(int(n["users"]) for n in nodes.values())
    result: dict[str, float | int] = {}
    first = curve[0]["nodes_ms_per_setup"] if curve else 0
    if first and float(first) > 0:
        result["setup_rate_per_core"] = max(1, math.floor(1000 / float(first)))
    elif cpu > 0 and users > 0:
        result["setup_rate_per_core"] = max(1, math.floor(users / cpu))
    rss = [float(n["rss_kib_per_user"]) for n in nodes.values() if n.get("rss_kib_per_user")]
    if with_rss and rss and max(rss) > 0:
        result["rss_kib_per_user"] = math.ceil(max(rss) * 10) / 10
    return result


def failure_table(failures: Mapping[str, int]) -> dict[str, int]:
    """Failures by reason, in words, most frequent first."""
    return {REASONS.get(k, k): v for k, v in sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))}
