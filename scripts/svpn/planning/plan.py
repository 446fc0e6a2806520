"""Capacity planning: from "how many users" to a farm (nodes, pools, addresses, tuning). Pure logic.

The inputs arrive in layers (defaults, a grown inventory's stored plan, a plan file, a calibration file,
flags); `resolve_input` validates them into one `PlanInput`, `make_plan` turns that into a `Plan`. Nothing
here reads or writes files: `svpn.inventory.tree` renders and checks inventories, `svpn.cli.plan` does the
I/O.

The sizing model, and where each default figure comes from, is spelled out next to the figures below
and repeated in every inventory's CAPACITY.md.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

from svpn import __version__
from svpn.core.errors import SvpnError
from svpn.farm import proposals
from svpn.farm.buckets import DEFAULT_BUCKETS, buckets_per_node

Number = int | float
IPv4Network = ipaddress.IPv4Network
IPv4Address = ipaddress.IPv4Address

# --------------------------------------------------------------------------- documented defaults

LIMIT_KEYS = ("ike_sas_per_node", "setup_rate_per_core", "esp_gbps_per_core", "rss_kib_per_user")

DEFAULT_LIMITS: dict[str, Number] = {
    "ike_sas_per_node": 5000,
    "setup_rate_per_core": 370,
    "esp_gbps_per_core": 1,
    "rss_kib_per_user": 36,
}
DEFAULT_LIMIT_SOURCES: dict[str, str] = {
    "ike_sas_per_node": (
        "default: half of the 10,000 IKE SAs one lab concentrator held (LAB.md, load-tester run), "
        "leaving room for rekeying, DPD and make-before-break reauthentication"
    ),
    "setup_rate_per_core": (
        "default: 1 / 2.7 ms of responder CPU per IKE setup measured in the lab (LAB.md), rounded down; "
        "the cost per setup grows with the SAs a node already holds, which the headroom covers"
    ),
    "esp_gbps_per_core": (
        "default: estimate for AES-GCM with AES-NI in the kernel's ESP; not measured (the lab has "
        "no kernel ESP)"
    ),
    "rss_kib_per_user": "default: upper end of the 31-36 KiB responder RSS per user measured at "
    "10,000 users (LAB.md)",
}


@dataclass(frozen=True)
class Profile:
    name: str
    mbps_per_user: Fraction
    description: str


PROFILES: dict[str, Profile] = {
    "office": Profile(
        "office",
        Fraction(3, 10),
        "estimate: office applications, mail and file shares, 0.3 Mbps per concurrent user at the peak",
    ),
    "video-tunnel": Profile(
        "video-tunnel",
        Fraction(5, 2),
        "estimate: office traffic plus one HD video conference per concurrent user through the "
        "tunnel, 2.5 Mbps",
    ),
    "video-split": Profile(
        "video-split",
        Fraction(3, 10),
        "estimate: video conferencing goes around the tunnel (split tunnel); office traffic "
        "remains, 0.3 Mbps",
    ),
}

REDUNDANCY_SPARES = {"N+1": 1, "N+2": 2}
TUNNEL_MODES = ("split", "full")

DEFAULT_IKE_PROPOSALS = (
    "aes256gcm16-prfsha384-ecp384",
    "aes256gcm16-prfsha256-curve25519",
    "aes128gcm16-prfsha256-ecp256",
)
# Every ESP proposal carries a DH group: PFS on each CHILD_SA rekey (the crypto policy, svpn.farm.proposals).
DEFAULT_ESP_PROPOSALS = (
    "aes256gcm16-ecp384",
    "aes256gcm16-curve25519",
    "aes128gcm16-ecp256",
)

# Model constants (not inputs): each is explained where it is used and in CAPACITY.md.
MEMORY_SHARE_FOR_CHARON = Fraction(1, 2)  # of a node's RAM; the rest is the OS, page cache, logs
HALF_OPEN_SECONDS = 2  # an IKE_SA_INIT stays half-open about one round trip plus the client's key work
THREADS_PER_CORE = 8
THREADS_MIN, THREADS_MAX = 16, 128
BLOCK_THRESHOLD = 50  # half-open SAs per source address: users behind one carrier-grade NAT share it
POOL_PREFIX_MAX = 30  # the smallest pool: a /30 (2 client addresses)
POOL_RESERVED_ADDRESSES = 2  # strongSwan skips a CIDR pool's network and broadcast addresses

# Host addresses inside the farm's networks, as offsets from each network's base address. .1 is left to
# the network's gateway (docker's bridge in the lab).
LB_HOST_OFFSETS = (11, 12)
VIP_HOST_OFFSET = 100
INSIDE_VIP_HOST_OFFSET = 10
LB_VRRP_PRIORITIES = (150, 100)  # lb1 holds the VIPs while both LBs are up
CONCENTRATOR_FIRST_OFFSET = 21

LB_NAMES = ("lb1", "lb2")
NODE_PREFIX = "conc"

DEFAULT_INPUT: dict[str, Any] = {
    "users": None,
    "concurrency_percent": 100,
    "profile": "office",
    "cores": 4,
    "nic_gbps": 10,
    "memory_gib": 8,
    **DEFAULT_LIMITS,
    "storm_seconds": 60,
    "redundancy": "N+1",
    "headroom_percent": 25,
    "supernet": "198.19.0.0/16",
    # docker's default bridge in the lab (LAB.md); harmless elsewhere, pools simply skip it
    "reserved_networks": ["198.19.255.0/24"],
    "vpn_name": "vpn.svpn.test",
    "public_network": "198.18.70.0/24",
    "inside_network": "198.18.71.0/24",
    "internal_network": "198.18.72.0/24",
    "vip": None,  # host .100 of the public network
    "lb_addresses": None,  # hosts .11 and .12 of the public network
    "inside_vip": None,  # host .10 of the inside network: the LB pair's inside VIP
    "internal_networks": None,  # the internal network
    "dns": [],
    "tunnel_mode": "split",
    "ike_proposals": list(DEFAULT_IKE_PROPOSALS),
    "esp_proposals": list(DEFAULT_ESP_PROPOSALS),
    "esp_pfs_optional": False,  # true lets ESP proposals without a DH group (no PFS) through: legacy clients
    "pki_dir": "{{ playbook_dir }}/../pki",
}
INPUT_KEYS = tuple(DEFAULT_INPUT)

FLAGS = {key: "--" + key.replace("_", "-") for key in INPUT_KEYS}
FLAGS.update(
    {"concurrency_percent": "--concurrency", "headroom_percent": "--headroom", "pki_dir": "(plan file only)"}
)


def field_name(key: str) -> str:
    """How an error names an input: the plan-file key and its flag."""
    return f"{key} ({FLAGS[key]})" if key in FLAGS else key


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


def frac(value: Number) -> Fraction:
    """Exact arithmetic from the decimal text (0.3 stays 3/10), so ceilings never drift by one."""
    return Fraction(str(value))


def input_hash(inp: PlanInput) -> str:
    """sha256 of the canonical JSON of every input and the limits' sources: the inventory's provenance."""
    data = {"inputs": inp.values(), "limit_sources": dict(inp.limit_sources)}
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --------------------------------------------------------------------------- field validation


def _bad(key: str, value: Any, valid: str) -> SvpnError:
    return SvpnError(f"{field_name(key)}: {value!r} is not valid; {valid}")


def as_number(key: str, value: Any, *, whole: bool, low: Number, high: Number, what: str) -> Number:
    kind = "a whole number" if whole else "a number"
    valid = f"give {kind} from {low:,} to {high:,} ({what})"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(key, value, valid)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _bad(key, value, valid)
        if value.is_integer():
            value = int(value)
        elif whole:
            raise _bad(key, value, valid)
    if not low <= value <= high:
        raise SvpnError(f"{field_name(key)}: {value!r} is outside {low:,}-{high:,} ({what})")
    return value


# key -> (whole number?, lowest, highest, what it is): the bounds of every numeric input
NUMBER_FIELDS: dict[str, tuple[bool, Number, Number, str]] = {
    "users": (True, 1, 10_000_000, "users the farm serves"),
    "concurrency_percent": (False, 1, 100, "percent of the users connected at the peak"),
    "cores": (True, 1, 1024, "CPU cores per node"),
    "nic_gbps": (False, 0.1, 1000, "NIC Gbps per node"),
    "memory_gib": (False, 0.5, 65536, "GiB RAM per node"),
    "ike_sas_per_node": (True, 1, 10_000_000, "IKE SAs one node holds"),
    "setup_rate_per_core": (False, 0.1, 1_000_000, "IKE setups per second per core"),
    "esp_gbps_per_core": (False, 0.01, 1000, "ESP Gbps per core"),
    "rss_kib_per_user": (False, 0.1, 1_000_000, "charon KiB of memory per user"),
    "storm_seconds": (True, 1, 3600, "seconds in which a reconnect storm must be absorbed"),
    "headroom_percent": (False, 0, 400, "percent of spare capacity above the peak"),
}


def as_field_number(key: str, value: Any) -> Number:
    whole, low, high, what = NUMBER_FIELDS[key]
    return as_number(key, value, whole=whole, low=low, high=high, what=what)


def _choice(key: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise _bad(key, value, "valid: " + ", ".join(choices))
    return str(value)


def as_network(key: str, value: Any) -> IPv4Network:
    valid = "give an IPv4 network in CIDR notation with no host bits set, e.g. 198.18.70.0/24"
    if not isinstance(value, str) or "/" not in value:
        raise _bad(key, value, valid)
    try:
        return ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise _bad(key, value, f"{valid} ({err})") from None


def as_address(key: str, value: Any) -> IPv4Address:
    try:
        if not isinstance(value, str):
            raise ValueError
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise _bad(key, value, "give an IPv4 address, e.g. 198.18.70.100") from None


def as_list(key: str, value: Any) -> list[Any]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if not isinstance(value, list | tuple):
        raise _bad(key, value, "give a list (or a comma-separated string)")
    return list(value)


_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_PROPOSAL = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def as_dns_name(key: str, value: Any) -> str:
    valid = "give a DNS name such as vpn.example.org (letters, digits, hyphens, dots; at least two labels)"
    if not isinstance(value, str) or len(value) > 253:
        raise _bad(key, value, valid)
    labels = value.split(".")
    if len(labels) < 2 or not all(_DNS_LABEL.match(label) for label in labels):
        raise _bad(key, value, valid)
    return value


def as_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(key, value, "give true or false")
    return value


def as_proposals(key: str, value: Any) -> tuple[str, ...]:
    items = as_list(key, value)
    if not items:
        raise _bad(
            key, value, "give at least one strongSwan proposal keyword, e.g. aes256gcm16-prfsha384-ecp384"
        )
    for item in items:
        if not isinstance(item, str) or not _PROPOSAL.match(item):
            raise _bad(key, item, "a proposal is strongSwan keywords joined by '-', e.g. aes256gcm16-ecp384")
    return tuple(items)


# --------------------------------------------------------------------------- layers -> PlanInput


def merge_layers(layers: Sequence[tuple[Mapping[str, Any], str]]) -> tuple[dict[str, Any], dict[str, str]]:
    """Later layers win. Returns the raw values and, for the limits, the label of the layer that set each."""
    raw: dict[str, Any] = dict(DEFAULT_INPUT)
    sources = dict(DEFAULT_LIMIT_SOURCES)
    for values, label in layers:
        for key, value in values.items():
            if key == "limit_sources":
                continue
            if key not in DEFAULT_INPUT:
                raise SvpnError(f"unknown input {key!r} ({label}); valid: {', '.join(INPUT_KEYS)}")
            raw[key] = value
            if key in LIMIT_KEYS:
                sources[key] = label
        # a grown inventory brings the sources its limits had when it was planned
        sources.update(
            {key: str(text) for key, text in values.get("limit_sources", {}).items() if key in LIMIT_KEYS}
        )
    return raw, sources


def resolve_input(layers: Sequence[tuple[Mapping[str, Any], str]]) -> PlanInput:
    """Validate the merged layers into a PlanInput; the first bad field raises, naming it and what fits."""
    raw, sources = merge_layers(layers)
    if raw["users"] is None:
        raise SvpnError(f"{field_name('users')}: missing; give the number of users the farm serves, e.g. 500")
    public = as_network("public_network", raw["public_network"])
    internal = as_network("internal_network", raw["internal_network"])
    vip = raw["vip"] if raw["vip"] is not None else str(_host(public, VIP_HOST_OFFSET, "vip"))
    lbs = raw["lb_addresses"]
    if lbs is None:
        lbs = [str(_host(public, offset, "lb_addresses")) for offset in LB_HOST_OFFSETS]
    inside = as_network("inside_network", raw["inside_network"])
    inside_vip = raw["inside_vip"]
    if inside_vip is None:
        inside_vip = str(_host(inside, INSIDE_VIP_HOST_OFFSET, "inside_vip"))
    internal_networks = raw["internal_networks"]
    if internal_networks is None:
        internal_networks = [str(internal)]
    numbers = {key: as_field_number(key, raw[key]) for key in NUMBER_FIELDS}
    inp = PlanInput(
        **numbers,  # type: ignore[arg-type]
        profile=_choice("profile", raw["profile"], tuple(PROFILES)),
        redundancy=_choice("redundancy", raw["redundancy"], tuple(REDUNDANCY_SPARES)),
        supernet=str(as_network("supernet", raw["supernet"])),
        reserved_networks=tuple(
            str(as_network("reserved_networks", n))
            for n in as_list("reserved_networks", raw["reserved_networks"])
        ),
        vpn_name=as_dns_name("vpn_name", raw["vpn_name"]),
        public_network=str(public),
        inside_network=str(inside),
        internal_network=str(internal),
        vip=str(as_address("vip", vip)),
        lb_addresses=_lb_addresses(lbs),
        inside_vip=str(as_address("inside_vip", inside_vip)),
        internal_networks=tuple(
            str(as_network("internal_networks", n)) for n in as_list("internal_networks", internal_networks)
        ),
        dns=tuple(str(as_address("dns", a)) for a in as_list("dns", raw["dns"])),
        tunnel_mode=_choice("tunnel_mode", raw["tunnel_mode"], TUNNEL_MODES),
        ike_proposals=as_proposals("ike_proposals", raw["ike_proposals"]),
        esp_proposals=as_proposals("esp_proposals", raw["esp_proposals"]),
        esp_pfs_optional=as_bool("esp_pfs_optional", raw["esp_pfs_optional"]),
        pki_dir=_pki_dir(raw["pki_dir"]),
        limit_sources=tuple((key, sources[key]) for key in LIMIT_KEYS),
    )
    _check_consistency(inp)
    _check_crypto_policy(inp)
    return inp


def _check_crypto_policy(inp: PlanInput) -> None:
    """The proposals keep the crypto policy (svpn.farm.proposals.policy_problems); else one error naming
    all."""
    names = {
        "ike": f"{field_name('ike_proposals')} -> svpn_ike_proposals",
        "esp": f"{field_name('esp_proposals')} -> svpn_esp_proposals",
        "pfs_optional": f"{FLAGS['esp_pfs_optional']} (esp_pfs_optional: true in a plan file)",
    }
    problems = proposals.policy_problems(
        inp.ike_proposals, inp.esp_proposals, inp.esp_pfs_optional, names=names
    )
    if problems:
        raise SvpnError("crypto policy: " + "; ".join(problems))


def _pki_dir(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _bad("pki_dir", value, "give the controller's PKI directory as a path")
    return value


def _lb_addresses(value: Any) -> tuple[str, str]:
    items = as_list("lb_addresses", value)
    if len(items) != 2:
        raise _bad(
            "lb_addresses", value, "give the LB pair's two public addresses, e.g. 198.18.70.11,198.18.70.12"
        )
    first, second = (str(as_address("lb_addresses", item)) for item in items)
    return first, second


def _host(network: IPv4Network, offset: int, key: str) -> IPv4Address:
    if offset >= network.num_addresses - 1:
        raise SvpnError(
            f"{field_name(key)}: network {network} has no host .{offset} for the default; "
            f"give the address explicitly or a network of /{32 - (offset + 2).bit_length()} or larger"
        )
    return network.network_address + offset


def _check_host_in(key: str, address: str, network: IPv4Network, network_key: str) -> None:
    ip = ipaddress.IPv4Address(address)
    if ip not in network or ip in (network.network_address, network.broadcast_address):
        raise SvpnError(
            f"{field_name(key)}: {address} is not a host address of {field_name(network_key)} {network}"
        )


def _check_consistency(inp: PlanInput) -> None:
    public = ipaddress.IPv4Network(inp.public_network)
    _check_host_in("vip", inp.vip, public, "public_network")
    for address in inp.lb_addresses:
        _check_host_in("lb_addresses", address, public, "public_network")
    _check_host_in("inside_vip", inp.inside_vip, ipaddress.IPv4Network(inp.inside_network), "inside_network")
    if len({inp.vip, *inp.lb_addresses}) != 3:
        raise SvpnError(
            f"{field_name('lb_addresses')}: {','.join(inp.lb_addresses)} and {field_name('vip')} {inp.vip} "
            "must be three different addresses"
        )
    named = [
        ("public_network", inp.public_network),
        ("inside_network", inp.inside_network),
        ("internal_network", inp.internal_network),
        ("supernet", inp.supernet),
    ]
    for i, (key_a, net_a) in enumerate(named):
        for key_b, net_b in named[i + 1 :]:
            _no_overlap(key_a, net_a, key_b, net_b)
    for net in inp.internal_networks:
        for key, other in named:
            if key != "internal_network":
                _no_overlap("internal_networks", net, key, other)
    for net in inp.reserved_networks:
        for key, other in named[:3]:
            _no_overlap("reserved_networks", net, key, other)
    if inp.tunnel_mode == "split" and not inp.internal_networks:
        raise SvpnError(
            f"{field_name('internal_networks')}: empty; a split tunnel needs at least one network users reach"
        )
    if inp.profile == "video-split" and inp.tunnel_mode == "full":
        raise SvpnError(
            f"{field_name('profile')}: 'video-split' sends video around the tunnel, which a full tunnel "
            f"({field_name('tunnel_mode')} full) cannot do; valid: office, video-tunnel, or tunnel_mode split"
        )


def _no_overlap(key_a: str, net_a: str, key_b: str, net_b: str) -> None:
    if ipaddress.IPv4Network(net_a).overlaps(ipaddress.IPv4Network(net_b)):
        raise SvpnError(
            f"networks overlap: {field_name(key_a)} {net_a} and {field_name(key_b)} {net_b}; "
            "give each its own address range"
        )


# --------------------------------------------------------------------------- plan and calibration files


def _refuse_unknown_keys(data: Mapping[Any, Any], valid: Iterable[str], label: str) -> None:
    valid = list(valid)
    unknown = sorted(str(key) for key in data if key not in valid)
    if unknown:
        raise SvpnError(
            f"{label}: unknown key {', '.join(map(repr, unknown))}; valid keys: {', '.join(valid)}"
        )


def plan_file_layer(data: Any, label: str) -> dict[str, Any]:
    """The keys of a YAML plan file (already loaded), checked against the inputs."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SvpnError(f"{label}: expected a mapping of plan inputs (key: value), got {type(data).__name__}")
    _refuse_unknown_keys(data, INPUT_KEYS, label)
    return dict(data)


CALIBRATION_TYPES: dict[str, tuple[type, ...]] = {
    "ike_sas_per_node": (int,),
    "setup_rate_per_core": (int, float),
    "esp_gbps_per_core": (int, float),
    "rss_kib_per_user": (int, float),
}


def calibration_layer(data: Any, label: str) -> dict[str, Any]:
    """Measured per-node limits from a calibration JSON document (already loaded); all keys optional.

    A load-test report (`svpn loadtest --json`) is accepted too: its limits are under "calibration".
    """
    if isinstance(data, Mapping) and "calibration" in data:
        data, label = data["calibration"], f"{label}: calibration"
    if not isinstance(data, Mapping):
        raise SvpnError(f"{label}: expected a JSON object with measured limits, got {type(data).__name__}")
    _refuse_unknown_keys(data, CALIBRATION_TYPES, label)
    for key, value in data.items():
        types = CALIBRATION_TYPES[key]
        if isinstance(value, bool) or not isinstance(value, types) or value <= 0:
            kind = "a whole number" if types == (int,) else "a number"
            raise SvpnError(f"{label}: {key} is {value!r}; give {kind} greater than 0")
    return dict(data)


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


def node_gbps(inp: PlanInput) -> Fraction:
    return min(inp.cores * frac(inp.esp_gbps_per_core), frac(inp.nic_gbps))


def per_node_limits(inp: PlanInput) -> list[tuple[str, str, Fraction, str, str]]:
    """(key, title, users per node, how, source) for each limit, in a fixed order."""
    profile = PROFILES[inp.profile]
    gbps = node_gbps(inp)
    setup_rate = inp.cores * frac(inp.setup_rate_per_core)
    memory_kib = frac(inp.memory_gib) * 1024 * 1024 * MEMORY_SHARE_FOR_CHARON
    return [
        (
            "sessions",
            "sessions (IKE SAs)",
            Fraction(inp.ike_sas_per_node),
            f"{inp.ike_sas_per_node:,} IKE SAs per node",
            inp.source("ike_sas_per_node"),
        ),
        (
            "setup_rate",
            "setup rate (reconnect storm)",
            setup_rate * inp.storm_seconds,
            f"{fmt(inp.setup_rate_per_core)}/s per core x {inp.cores} cores x {inp.storm_seconds} s: "
            "every connected user reconnects within the storm window (a failed LB or node)",
            inp.source("setup_rate_per_core"),
        ),
        (
            "throughput",
            "ESP throughput",
            gbps * 1000 / profile.mbps_per_user,
            f"min({inp.cores} cores x {fmt(inp.esp_gbps_per_core)} Gbps, {fmt(inp.nic_gbps)} Gbps NIC) = "
            f"{fmt(gbps)} Gbps / {fmt(profile.mbps_per_user)} Mbps per user ({profile.name})",
            inp.source("esp_gbps_per_core"),
        ),
        (
            "memory",
            "memory",
            memory_kib / frac(inp.rss_kib_per_user),
            f"{fmt(inp.memory_gib)} GiB x {fmt(MEMORY_SHARE_FOR_CHARON)} for charon / "
            f"{fmt(inp.rss_kib_per_user)} KiB per user",
            inp.source("rss_kib_per_user"),
        ),
    ]


def size_farm(inp: PlanInput, *, min_nodes: int = 0) -> Sizing:
    """Node count = max over limits of ceil(load / users per node), plus the redundancy spares."""
    concurrent = inp.concurrent
    load = concurrent * inp.headroom
    results = tuple(
        LimitResult(key, title, per_node, max(1, math.ceil(load / per_node)), how, source)
        for key, title, per_node, how, source in per_node_limits(inp)
    )
    base = max(result.nodes for result in results)
    # The binding limit is the one the peak uses most of; it also sets `base` (the largest ratio's ceiling).
    tightest = max(results, key=lambda result: load / result.users_per_node)
    node_count = base + inp.spares
    reason = (
        f"{base} node{'s carry' if base != 1 else ' carries'} {concurrent:,} concurrent users + "
        f"{fmt(inp.headroom_percent)} % headroom = {fmt_users(load)}; {tightest.key} binds "
        f"({tightest.how}: {fmt_users(tightest.users_per_node)} users per node), "
        f"+ {inp.spares} spare{'s' if inp.spares != 1 else ''} ({inp.redundancy}) = {node_count}"
    )
    if min_nodes > node_count:
        reason += f"; raised to {min_nodes} (the inventory already has {min_nodes} concentrators)"
        node_count = min_nodes
    return Sizing(concurrent, load, results, base, inp.spares, node_count, tightest.key, reason)


def failover_share(concurrent: int, nodes: int, failed: int, buckets: int = DEFAULT_BUCKETS) -> int:
    """Users a survivor may have to carry when *failed* of *nodes* are down.

    The bucket table gives each survivor at most ceil(buckets / survivors) buckets, so its share of the
    users is at most that fraction; this is never below ceil(concurrent / survivors).
    """
    survivors = nodes - failed
    if survivors < 1:
        raise SvpnError(f"a farm of {nodes} nodes cannot lose {failed} and keep serving users")
    return math.ceil(concurrent * math.ceil(buckets / survivors) / buckets)


def usable_addresses(prefix: int) -> int:
    """Client addresses a strongSwan CIDR pool of this prefix hands out."""
    return 2 ** (32 - prefix) - POOL_RESERVED_ADDRESSES


def pool_prefix_for(addresses: int) -> int:
    """The longest prefix (smallest pool) whose usable addresses are at least *addresses*."""
    prefix = POOL_PREFIX_MAX
    while usable_addresses(prefix) < addresses:
        prefix -= 1
        if prefix < 1:
            raise SvpnError(f"no IPv4 pool holds {addresses:,} addresses")
    return prefix


def carve_pools(
    supernet: IPv4Network, prefix: int, count: int, taken: Sequence[IPv4Network] = ()
) -> list[IPv4Network]:
    """The first *count* aligned /prefix blocks of *supernet*, in address order, overlapping nothing taken."""
    if prefix < supernet.prefixlen:
        return [] if count == 0 else _too_small(supernet, prefix, count, 0)
    chosen: list[IPv4Network] = []
    blocked = sorted((net for net in taken if net.overlaps(supernet)), key=lambda n: n.network_address)
    size = 2 ** (32 - prefix)
    address = int(supernet.network_address)
    end = int(supernet.broadcast_address)
    while len(chosen) < count and address + size - 1 <= end:
        block = IPv4Network((address, prefix))
        clash = next((net for net in blocked if net.overlaps(block)), None)
        if clash is None:
            chosen.append(block)
            address += size
        else:
            # jump past the blocking network, staying aligned to the pool size
            after = int(clash.broadcast_address) + 1
            address = max(address + size, -(-after // size) * size)
    if len(chosen) < count:
        _too_small(supernet, prefix, count, len(chosen))
    return chosen


def _too_small(supernet: IPv4Network, prefix: int, count: int, fits: int) -> list[IPv4Network]:
    needed = max(0, prefix - math.ceil(math.log2(max(count, 1))))
    raise SvpnError(
        f"{field_name('supernet')}: {supernet} is too small: it has room for {fits} of the {count} pools "
        f"of /{prefix} ({usable_addresses(prefix):,} addresses each) this plan needs for its users and "
        f"failover; give a /{needed} or larger (outside reserved networks and existing pools)"
    )


# --------------------------------------------------------------------------- tuning


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
        return usable_addresses(self.pool.prefixlen)


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


def make_plan(inp: PlanInput, existing: ExistingFarm | None = None, buckets: int = DEFAULT_BUCKETS) -> Plan:
    """Size the farm and lay it out; with *existing*, keep its nodes and add to them."""
    old = existing.concentrators if existing else ()
    sizing = size_farm(inp, min_nodes=len(old))
    node_count, pools = _fit_pools(inp, sizing, old, buckets)
    if node_count != sizing.node_count:
        sizing = replace(
            sizing,
            node_count=node_count,
            reason=f"{sizing.reason}; raised to {node_count} so a survivor's failover share fits the "
            f"smallest existing pool ({min(n.pool_addresses for n in old):,} addresses)",
        )
    concentrators = _lay_out_concentrators(inp, old, node_count, pools.prefix)
    loadbalancers = _lay_out_loadbalancers(inp, existing.loadbalancers if existing else ())
    _check_addresses_unique(concentrators, loadbalancers, inp)
    counts = buckets_per_node([node.name for node in concentrators], buckets)
    return Plan(
        inp, input_hash(inp), __version__, sizing, pools, concentrators, loadbalancers, buckets, counts
    )


def _fit_pools(
    inp: PlanInput, sizing: Sizing, old: Sequence[Concentrator], buckets: int
) -> tuple[int, PoolSizing]:
    """The node count (raised if existing pools are too small for the share) and the new pools' size."""
    failed = inp.spares
    smallest_old = min((node.pool_addresses for node in old), default=None)
    for nodes in range(sizing.node_count, buckets + 1):
        share = failover_share(sizing.concurrent, nodes, failed, buckets)
        needed = math.ceil(share * inp.headroom)
        if smallest_old is None or smallest_old >= needed:
            prefix = pool_prefix_for(needed)
            survivors = nodes - failed
            reason = (
                f"after {failed} of {nodes} nodes {'fails' if failed == 1 else 'fail'}, a survivor owns "
                "at most "
                f"{math.ceil(buckets / survivors)} of {buckets} buckets = {share:,} users, "
                f"+ {fmt(inp.headroom_percent)} % headroom = {needed:,} addresses: "
                f"/{prefix} holds {usable_addresses(prefix):,}"
            )
            return nodes, PoolSizing(failed, share, needed, prefix, reason)
    raise SvpnError(
        f"{field_name('users')}: {inp.users:,} users need more than {buckets} concentrators "
        f"(the LB's bucket table has {buckets} buckets); use larger nodes or plan several farms"
    )


def _lay_out_concentrators(
    inp: PlanInput, old: Sequence[Concentrator], node_count: int, prefix: int
) -> tuple[Concentrator, ...]:
    supernet = ipaddress.IPv4Network(inp.supernet)
    for node in old:
        if not node.pool.subnet_of(supernet):
            raise SvpnError(
                f"{field_name('supernet')}: {supernet} does not contain {node.name}'s existing pool "
                f"{node.pool}"
            )
    taken = [ipaddress.IPv4Network(net) for net in inp.reserved_networks] + [node.pool for node in old]
    new_count = node_count - len(old)
    pools = carve_pools(supernet, prefix, new_count, taken)
    inside_net = ipaddress.IPv4Network(inp.inside_network)
    internal_net = ipaddress.IPv4Network(inp.internal_network)
    fixed = {ipaddress.IPv4Address(a) for a in (inp.vip, inp.inside_vip, *inp.lb_addresses, *inp.dns)}
    fixed |= {inside_net.network_address + offset for offset in LB_HOST_OFFSETS}
    inside = _free_hosts(inside_net, fixed | {n.inside for n in old}, new_count, "inside_network")
    internal = _free_hosts(internal_net, fixed | {n.internal for n in old}, new_count, "internal_network")
    used_numbers = {_node_number(node.name) for node in old}
    numbers = [n for n in range(1, node_count + len(old) + 1) if n not in used_numbers][:new_count]
    new = tuple(
        Concentrator(
            f"{NODE_PREFIX}{number}",
            pool,
            inside_ip,
            internal_ip,
            tuning_for(inp.cores, usable_addresses(prefix), inp.setup_rate_per_core),
        )
        for number, pool, inside_ip, internal_ip in zip(numbers, pools, inside, internal, strict=True)
    )
    return tuple(sorted((*old, *new), key=lambda node: (_node_number(node.name), node.name)))


def _node_number(name: str) -> int:
    match = re.fullmatch(rf"{NODE_PREFIX}(\d+)", name)
    return int(match.group(1)) if match else 0


def _free_hosts(network: IPv4Network, taken: set[IPv4Address], count: int, key: str) -> list[IPv4Address]:
    hosts: list[IPv4Address] = []
    offset = CONCENTRATOR_FIRST_OFFSET
    while len(hosts) < count:
        if offset >= network.num_addresses - 1:
            raise SvpnError(
                f"{field_name(key)}: {network} has no room for {count} more concentrators "
                f"(addresses from .{CONCENTRATOR_FIRST_OFFSET} on); give a larger network"
            )
        address = network.network_address + offset
        if address not in taken:
            hosts.append(address)
        offset += 1
    return hosts


def _lay_out_loadbalancers(inp: PlanInput, old: Sequence[LoadBalancer]) -> tuple[LoadBalancer, ...]:
    inside_net = ipaddress.IPv4Network(inp.inside_network)
    planned = tuple(
        LoadBalancer(name, ipaddress.IPv4Address(public), _host(inside_net, offset, "inside_network"))
        for name, public, offset in zip(LB_NAMES, inp.lb_addresses, LB_HOST_OFFSETS, strict=True)
    )
    if not old:
        return planned
    by_name = {lb.name: lb for lb in old}
    if sorted(by_name) != list(LB_NAMES):
        raise SvpnError(f"the inventory's load balancers are {', '.join(sorted(by_name))}; expected lb1, lb2")
    kept = tuple(by_name[name] for name in LB_NAMES)
    if tuple(str(lb.public) for lb in kept) != inp.lb_addresses:
        raise SvpnError(
            f"{field_name('lb_addresses')}: {','.join(inp.lb_addresses)} differs from the inventory's "
            f"{','.join(str(lb.public) for lb in kept)}; a grown farm keeps its addresses"
        )
    return kept


def _check_addresses_unique(
    concentrators: Sequence[Concentrator], loadbalancers: Sequence[LoadBalancer], inp: PlanInput
) -> None:
    seen: dict[IPv4Address, str] = {
        ipaddress.IPv4Address(inp.vip): "vip",
        ipaddress.IPv4Address(inp.inside_vip): "inside_vip",
    }
    pairs = [(lb.name, a) for lb in loadbalancers for a in (lb.public, lb.inside)]
    pairs += [(node.name, a) for node in concentrators for a in (node.inside, node.internal)]
    for owner, address in pairs:
        if address in seen:
            raise SvpnError(f"address {address} of {owner} is already used by {seen[address]}")
        seen[address] = owner


# --------------------------------------------------------------------------- presenting a plan


def fmt(value: Number | Fraction) -> str:
    """A number for people: whole numbers with thousands separators, others with up to 3 decimals."""
    if isinstance(value, Fraction) and value.denominator == 1:
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):,.3f}".rstrip("0").rstrip(".")


def fmt_users(value: Fraction) -> str:
    return f"{math.floor(value):,}" if value >= 1 else fmt(value)


def plan_data(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data (`svpn plan --json`)."""
    inp = plan.input
    return {
        "svpn_version": plan.version,
        "input_sha256": plan.input_hash,
        "input": inp.values(),
        "limit_sources": dict(inp.limit_sources),
        "concurrent_users": plan.sizing.concurrent,
        "limits": [
            {
                "limit": result.key,
                "users_per_node": math.floor(result.users_per_node),
                "nodes": result.nodes,
                "how": result.how,
                "source": result.source,
            }
            for result in plan.sizing.limits
        ],
        "binding": plan.sizing.binding,
        "base_nodes": plan.sizing.base_nodes,
        "spares": plan.sizing.spares,
        "node_count": plan.node_count,
        "reason": plan.sizing.reason,
        "pools": {
            "failed_nodes_covered": plan.pools.failed,
            "failover_share_users": plan.pools.share,
            "addresses_needed": plan.pools.needed,
            "prefix": plan.pools.prefix,
            "reason": plan.pools.reason,
        },
        "buckets": plan.buckets,
        "buckets_per_node": plan.bucket_counts,
        "concentrators": [
            {
                "name": node.name,
                "existing": node.existing,
                "pool": str(node.pool),
                "pool_addresses": node.pool_addresses,
                "inside": str(node.inside),
                "internal": str(node.internal),
                "tuning": vars(node.tuning).copy(),
            }
            for node in plan.concentrators
        ],
        "loadbalancers": [
            {"name": lb.name, "public": str(lb.public), "inside": str(lb.inside)} for lb in plan.loadbalancers
        ],
    }


def plan_text(plan: Plan) -> str:
    """The plan for people (`svpn plan` without --json)."""
    inp, sizing = plan.input, plan.sizing
    profile = PROFILES[inp.profile]
    lines = [
        f"Plan for {inp.vpn_name}: {inp.users:,} users, peak {fmt(inp.concurrency_percent)} % = "
        f"{sizing.concurrent:,} concurrent, profile {profile.name} ({fmt(profile.mbps_per_user)} Mbps each)",
        f"Node size: {inp.cores} cores, {fmt(inp.nic_gbps)} Gbps NIC, {fmt(inp.memory_gib)} GiB; "
        f"redundancy {inp.redundancy}, headroom {fmt(inp.headroom_percent)} %",
        "",
        "Per-node limits (users per node -> nodes for the peak + headroom):",
    ]
    width = max(len(result.title) for result in sizing.limits)
    for result in sizing.limits:
        mark = "  <- binds" if result.key == sizing.binding else ""
        lines.append(
            f"  {result.title:<{width}}  {fmt_users(result.users_per_node):>10}  -> {result.nodes:>3}{mark}"
        )
        lines.append(f"  {'':<{width}}  {result.how}")
    lines += [
        "",
        f"Nodes: {plan.node_count} ({sizing.reason})",
        f"Pools: /{plan.pools.prefix} per new node from {inp.supernet} ({plan.pools.reason})",
        f"LB buckets: {plan.buckets}; "
        + ", ".join(f"{name} {count}" for name, count in plan.bucket_counts.items()),
        "",
        "Concentrators:",
    ]
    for node in plan.concentrators:
        tuning = node.tuning
        lines.append(
            f"  {node.name:<7} pool {node.pool!s:<18} inside {node.inside!s:<15} internal "
            f"{node.internal!s:<15} "
            f"threads {tuning.threads}, ikesa_table {tuning.ikesa_table_size}/{tuning.ikesa_table_segments}, "
            f"half-open {tuning.init_limit_half_open}/{tuning.cookie_threshold}/{tuning.block_threshold}"
            + ("  (existing)" if node.existing else "")
        )
    lines.append("Load balancers:")
    for lb in plan.loadbalancers:
        lines.append(f"  {lb.name:<7} public {lb.public!s:<15} inside {lb.inside}")
    lines.append(f"VIP: {inp.vip} ({inp.vpn_name}); inside VIP: {inp.inside_vip}")
    return "\n".join(lines) + "\n"
