"""The LB's hash, reproduced: which bucket (and so which node) a source address lands on.

nftables' `jhash ip saddr mod N seed S` is the kernel's jhash (Bob Jenkins' lookup3, include/linux/jhash.h)
over the 4 address bytes, scaled into [0, N) with reciprocal_scale. Reproducing it lets the helpdesk and
auditors answer "which node serves a user at address X" without touching the LB; the farm scenario checks
the prediction against where users actually landed.
"""

from __future__ import annotations

import ipaddress

MASK = 0xFFFFFFFF
JHASH_INITVAL = 0xDEADBEEF
# The seed in the LB's rule (roles/loadbalancer/templates/nftables.conf.j2): "SVPN" in ASCII.
LB_HASH_SEED = 0x5356504E


def _rol32(word: int, shift: int) -> int:
    return ((word << shift) | (word >> (32 - shift))) & MASK


def _final(a: int, b: int, c: int) -> int:
    c ^= b
    c = (c - _rol32(b, 14)) & MASK
    a ^= c
    a = (a - _rol32(c, 11)) & MASK
    b ^= a
    b = (b - _rol32(a, 25)) & MASK
    c ^= b
    c = (c - _rol32(b, 16)) & MASK
    a ^= c
    a = (a - _rol32(c, 4)) & MASK
    b ^= a
    b = (b - _rol32(a, 14)) & MASK
    c ^= b
    c = (c - _rol32(b, 24)) & MASK
    return c


def jhash4(key: bytes, seed: int) -> int:
    """The kernel's jhash() for a 4-byte key (an IPv4 address in network byte order)."""
    if len(key) != 4:
        raise ValueError(f"jhash4 takes 4 bytes, got {len(key)}")
    a = b = c = (JHASH_INITVAL + 4 + seed) & MASK
    a = (a + int.from_bytes(key, "little")) & MASK
    return _final(a, b, c)


def bucket_of(address: str, buckets: int, seed: int = LB_HASH_SEED) -> int:
    """The bucket nftables' `jhash ip saddr mod BUCKETS seed SEED` puts *address* in."""
    packed = ipaddress.IPv4Address(address).packed
    return (jhash4(packed, seed) * buckets) >> 32
