"""charon's tuning per concentrator (threads, IKE SA table, half-open limits), derived from the node's
cores, its pool and the setup rate, with a comment per value saying how it was derived.

Imports only svpn.planning.numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from svpn.planning.numbers import Number, fmt, frac

# Model constants (not inputs): each is explained where it is used and in CAPACITY.md.
HALF_OPEN_SECONDS = 2  # an IKE_SA_INIT stays half-open about one round trip plus the client's key work
THREADS_PER_CORE = 8
THREADS_MIN, THREADS_MAX = 16, 128
BLOCK_THRESHOLD = 50  # half-open SAs per source address: users behind one carrier-grade NAT share it


@dataclass(frozen=True)
class Tuning:
    threads: int
    ikesa_table_size: int
    ikesa_table_segments: int
    init_limit_half_open: int
    cookie_threshold: int
    block_threshold: int

    def explain(self, cores: int, pool_addresses: int, setup_rate: Fraction) -> dict[str, str]:
        """One short comment per value: how it was derived."""
        return {
            "threads": (
                f"{THREADS_PER_CORE} per core x {cores} cores (within {THREADS_MIN}..{THREADS_MAX}): "
                "keeps every core on IKE key work while other threads wait"
            ),
            "ikesa_table_size": (
                f"power of two >= the pool's {pool_addresses:,} addresses (within 256..65536): "
                "about one IKE SA per bucket with the pool full"
            ),
            "ikesa_table_segments": (
                f"power of two >= {self.threads} threads (within 1..256): lookups rarely wait on a lock"
            ),
            "init_limit_half_open": (
                f"{fmt(setup_rate)} setups/s x {HALF_OPEN_SECONDS} s half-open, rounded up to 100: "
                "a storm's backlog beyond that is dropped and retransmitted by clients"
            ),
            "cookie_threshold": "half of init_limit_half_open: COOKIEs before dropping (anti-DoS)",
            "block_threshold": "half-open SAs per source address: users behind one carrier-grade "
            "NAT share it",
        }


def _next_pow2(value: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(value, 1))))


def tuning_for(cores: int, pool_addresses: int, setup_rate_per_core: Number) -> Tuning:
    threads = min(THREADS_MAX, max(THREADS_MIN, THREADS_PER_CORE * cores))
    table = min(65536, max(256, _next_pow2(pool_addresses)))
    segments = min(256, _next_pow2(threads), table)
    setup_rate = cores * frac(setup_rate_per_core)
    init_limit = max(100, math.ceil(setup_rate * HALF_OPEN_SECONDS / 100) * 100)
    return Tuning(threads, table, segments, init_limit, init_limit // 2, BLOCK_THRESHOLD)
