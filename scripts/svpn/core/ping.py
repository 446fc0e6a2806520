"""Reading iputils ``ping`` output: the one home of both readers the project needs. Pure logic.

:func:`ping_summary` reads the closing statistics of ``ping -q`` (sent, received, loss, round-trip times;
the load test's traffic sample); :func:`longest_gap` reads the replies of ``ping -D`` (each one stamped
with the time it came) for the longest silence between two of them (the molecule scenarios' failover
checks). Imports nothing of svpn.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

_COUNTS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_RTT = re.compile(r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")
_STAMPED_REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from", re.M)


def ping_summary(output: str) -> dict[str, Any]:
    """Sent, received, loss and round-trip times from iputils ``ping -q`` output (None where absent)."""
    counts = _COUNTS.search(output)
    sent, received = (int(counts.group(1)), int(counts.group(2))) if counts else (0, 0)
    rtt = _RTT.search(output)
    return {
        "sent": sent,
        "received": received,
        "loss_pct": round((sent - received) / sent * 100, 1) if sent else None,
        "rtt_avg_ms": float(rtt.group(2)) if rtt else None,
        "rtt_max_ms": float(rtt.group(3)) if rtt else None,
    }


def longest_gap(ping_output: str) -> tuple[float, int, float]:
    """(longest silence between replies in s, replies, span in s) from `ping -D` output."""
    stamps = [float(t) for t in _STAMPED_REPLY.findall(ping_output)]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    return (max(gaps) if gaps else 0.0), len(stamps), (stamps[-1] - stamps[0] if stamps else 0.0)
