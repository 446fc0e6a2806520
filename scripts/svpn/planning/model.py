"""The planner's data: the validated input (`PlanInput`), the sizing results, the concentrators and load
balancers laid out, an existing farm being grown, and the `Plan` that holds them all.

Imports svpn.farm.facts and svpn.planning's numbers, defaults and tuning.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from svpn.farm.facts import pool_leases
from svpn.planning.defaults import INPUT_KEYS, REDUNDANCY_SPARES
from svpn.planning.numbers import Number, frac
from svpn.planning.tuning import Tuning

IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address

# --------------------------------------------------------------------------- the validated input


@dataclass(frozen=True)
class PlanInput:
    users: int
    concurrency_percent: Number
    profile: str
    cores: int
    nic_gbps: Number
    memory_gib: Number
    ike_sas_per_node: int
    setup_rate_per_core: Number
    esp_gbps_per_core: Number
    rss_kib_per_user: Number
    storm_seconds: int
    redundancy: str
    headroom_percent: Number
    supernet: str
    reserved_networks: tuple[str, ...]
    vpn_name: str
    public_network: str
    inside_network: str
    internal_network: str
    vip: str
    lb_addresses: tuple[str, str]
    inside_vip: str
    internal_networks: tuple[str, ...]
    dns: tuple[str, ...]
    management_networks: tuple[str, ...]
    tunnel_mode: str
    ike_proposals: tuple[str, ...]
    esp_proposals: tuple[str, ...]
    esp_pfs_optional: bool
    pki_dir: str
    limit_sources: tuple[tuple[str, str], ...] = field(default=())

    def values(self) -> dict[str, Any]:
        """The inputs as plain data (lists, not tuples), in the documented key order."""
        return {key: _plain(getattr(self, key)) for key in INPUT_KEYS}

    def source(self, key: str) -> str:
        return dict(self.limit_sources)[key]

    @property
    def spares(self) -> int:
        return REDUNDANCY_SPARES[self.redundancy]

    @property
    def concurrent(self) -> int:
        return math.ceil(self.users * frac(self.concurrency_percent) / 100)

    @property
    def headroom(self) -> Fraction:
        return 1 + frac(self.headroom_percent) / 100


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def input_hash(inp: PlanInput) -> str:
    """sha256 of the canonical JSON of every input and the limits' sources: the inventory's provenance."""
    data = {"inputs": inp.values(), "limit_sources": dict(inp.limit_sources)}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --------------------------------------------------------------------------- sizing


@dataclass(frozen=True)
class LimitResult:
    """One per-node limit: how many concurrent users a node can take under it, and the nodes that needs."""

    key: str
    title: str
    users_per_node: Fraction
    nodes: int
    how: str
    source: str


@dataclass(frozen=True)
class Sizing:
    concurrent: int
    load: Fraction  # concurrent users x (1 + headroom)
    limits: tuple[LimitResult, ...]
    base_nodes: int
    spares: int
    node_count: int
    binding: str  # the key of the limit the peak uses most of
    reason: str


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Concentrator:
    name: str
    pool: IPv4Network
    inside: IPv4Address
    internal: IPv4Address
    tuning: Tuning
    existing: bool = False

    @property
    def pool_addresses(self) -> int:
        return pool_leases(self.pool.prefixlen)


@dataclass(frozen=True)
class LoadBalancer:
    name: str
    public: IPv4Address
    inside: IPv4Address
    existing: bool = False


@dataclass(frozen=True)
class ExistingFarm:
    """What an inventory being grown already has; every item is kept exactly as it is."""

    concentrators: tuple[Concentrator, ...]
    loadbalancers: tuple[LoadBalancer, ...]


@dataclass(frozen=True)
class PoolSizing:
    failed: int
    share: int  # users a survivor may carry after `failed` nodes fail
    needed: int  # share x (1 + headroom)
    prefix: int
    reason: str


@dataclass(frozen=True)
class Plan:
    input: PlanInput
    input_hash: str
    version: str
    sizing: Sizing
    pools: PoolSizing
    concentrators: tuple[Concentrator, ...]
    loadbalancers: tuple[LoadBalancer, ...]
    buckets: int
    bucket_counts: dict[str, int]

    @property
    def node_count(self) -> int:
        return len(self.concentrators)

    @property
    def new_concentrators(self) -> tuple[Concentrator, ...]:
        return tuple(node for node in self.concentrators if not node.existing)
