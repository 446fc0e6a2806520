"""Load tests of a lab farm: what `svpn loadtest` plans, renders, parses and computes. Pure logic.

Nothing here touches docker, sockets or files; `svpn.loadtest.run` does the I/O and `svpn.cli.loadtest` the
command. The pieces:

* the generators' plan: how many load-generator hosts, their addresses on the farm's public network, and
  one block of per-user source addresses each (inside ``SOURCE_RANGE``; the LBs route each block back to
  its generator for the run);
* the generator's strongswan.conf, rendered from ``loadgen/strongswan.conf.j2``;
* the temporary connection each concentrator gets for the run: a copy of its own ``svpn`` connection (read
  from the node's swanctl.conf, so proposals, timers and pool are what the node really runs) that accepts
  only the load-test CA's users, plus, where the node's own pool is too small to take its share after a
  node loss, a temporary overflow pool;
* the generators' progress stream (the patched load-tester plugin's control socket) and the report: time
  until all up, setup rate over time, failures by reason, spread, CPU and memory per user, and the
  calibration the capacity planner reads (`svpn plan --calibration REPORT`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from svpn.access import pki
from svpn.core.errors import SvpnError
from svpn.farm.buckets import DEFAULT_BUCKETS, bucket_owners
from svpn.farm.lbhash import bucket_of

IPv4Address = ipaddress.IPv4Address
IPv4Network = ipaddress.IPv4Network

# Names of everything the run loads into the concentrators' charon (memory only) and removes afterwards.
CONN_NAME = "svpn-loadtest"
AUTHORITY_NAME = "svpn-loadtest"
OVERFLOW_POOL_PREFIX = "svpn-loadtest-"
# Load-test users are "CN=g<generator>-u<n>, OU=svpn-loadtest, O=SVPN lab"; the temporary connection
# matches exactly these names (and only from the load-test CA), so real users never select it.
ID_SUFFIX = "OU=svpn-loadtest, O=SVPN lab"
ID_PATTERN = f"CN=*, {ID_SUFFIX}"
CA_DN_PREFIX = "CN=SVPN load-test CA"

GENERATOR_CONTAINER_PREFIX = "svpn-lt-"
# Per-user source addresses of the generators (RFC 2544 range, apart from the lab's own networks).
SOURCE_RANGE = IPv4Network("198.18.64.0/18")
# Virtual IPs for users beyond a node's own pool (apart from the lab pools and docker's bridge).
OVERFLOW_POOL_RANGE = IPv4Network("198.19.64.0/18")
POOL_RESERVED_ADDRESSES = 2  # strongSwan skips a CIDR pool's network and broadcast addresses
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

# swanctl.conf keys whose comma-separated values are lists in a vici message (as swanctl sends them).
LIST_KEYS = frozenset(
    {
        "local_addrs",
        "remote_addrs",
        "proposals",
        "esp_proposals",
        "ah_proposals",
        "local_ts",
        "remote_ts",
        "vips",
        "pools",
        "groups",
        "cert_policy",
    }
)
# File lists in swanctl.conf (paths on the node): the temporary connection finds the same credentials
# by identity instead, so nothing is loaded twice.
FILE_LIST_KEYS = frozenset({"certs", "cacerts", "pubkeys"})


# --------------------------------------------------------------------------- options


def parse_rate(value: str | float | None) -> float | None:
    """New users per second, or None for unlimited (the generators' half-open limit paces them)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "unlimited", "max")):
        return None
    try:
        rate = float(value)
    except (TypeError, ValueError):
        raise SvpnError(f"--rate: {value!r} is not a number; give users per second or 'unlimited'") from None
    if not math.isfinite(rate) or rate <= 0:
        raise SvpnError(f"--rate: {value!r}; give users per second greater than 0, or 'unlimited'")
    return rate


def initiation_delay_ms(rate: float | None, generators: int) -> int:
    """Pause between two initiations on one generator for *rate* users per second overall (0: none)."""
    if rate is None:
        return 0
    delay = round(1000 * generators / rate)
    if delay < 1:
        raise SvpnError(
            f"--rate: {rate:g} per second is more than {generators} generators can pace "
            f"({1000 * generators} per second at 1 ms each); use 'unlimited'"
        )
    return delay


# --------------------------------------------------------------------------- the load-test CA


@dataclass(frozen=True)
class LoadtestCA:
    dn: str  # as strongSwan writes it (ca_id of the temporary connection)
    cert_pem: bytes
    key_pem: bytes


def make_loadtest_ca(run_id: str, now: dt.datetime, lifetime: dt.timedelta) -> LoadtestCA:
    """A throwaway CA for one run: ECDSA P-256 (cheap to sign with), valid only for the run's length.

    The generators issue every user's certificate with it; the concentrators trust it only through a
    temporary authority for the run. Nothing keeps its key after the run; should anything survive a
    crash, the certificate expires with *lifetime*.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    cn = f"SVPN load-test CA {run_id}"
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "svpn-loadtest"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "SVPN lab"),
        ]
    )
    cert = pki.ca_certificate(key, name, now - dt.timedelta(hours=1), now + lifetime, signs_data=True)
    return LoadtestCA(
        dn=f"CN={cn}, {ID_SUFFIX}",
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


# --------------------------------------------------------------------------- generators


@dataclass(frozen=True)
class GeneratorSpec:
    name: str  # gen1, gen2, ...
    container: str
    public_address: IPv4Address
    source_block: IPv4Network  # routed to this generator by the LBs for the run
    users: int

    @property
    def first_source(self) -> IPv4Address:
        return self.source_block.network_address + 1

    @property
    def last_source(self) -> IPv4Address:
        return self.source_block.network_address + self.users

    def sources(self) -> list[IPv4Address]:
        return [self.first_source + i for i in range(self.users)]

    @property
    def id_format(self) -> str:
        """The load-tester's initiator_id: %d is the user's number on this generator."""
        return f"CN={self.name.replace('gen', 'g', 1)}-u%d, {ID_SUFFIX}"


def split_users(users: int, parts: int) -> list[int]:
    base, extra = divmod(users, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def plan_generators(
    users: int,
    generators: int,
    public_net: IPv4Network,
    taken: Iterable[IPv4Address],
    source_range: IPv4Network = SOURCE_RANGE,
) -> list[GeneratorSpec]:
    """Generators on the public network (top addresses first) with one aligned source block each."""
    if users < 1:
        raise SvpnError(f"--users: {users}; give at least 1")
    if generators < 1:
        raise SvpnError(f"--generators: {generators}; give at least 1")
    if generators > users:
        generators = users
    shares = split_users(users, generators)
    block_prefix = 32 - max(2, math.ceil(math.log2(max(shares) + 2)))
    if block_prefix < source_range.prefixlen:
        raise SvpnError(
            f"--users: {max(shares)} users on one generator need a /{block_prefix} of source addresses; "
            f"the load-test range {source_range} is smaller: use more --generators"
        )
    blocks = list(source_range.subnets(new_prefix=block_prefix))
    if len(blocks) < generators:
        capacity = len(blocks) * (blocks[0].num_addresses - 2)
        raise SvpnError(
            f"--users: {users} users over {generators} generators need {generators} /{block_prefix} blocks "
            f"of source addresses; {source_range} holds {len(blocks)} (about {capacity} users)"
        )
    taken_set = set(taken)
    free = (ip for ip in reversed(list(public_net.hosts())) if ip not in taken_set)
    specs = []
    for index, share in enumerate(shares, start=1):
        address = next(free, None)
        if address is None:
            raise SvpnError(f"the public network {public_net} has no free address for generator {index}")
        specs.append(
            GeneratorSpec(
                name=f"gen{index}",
                container=f"{GENERATOR_CONTAINER_PREFIX}gen{index}",
                public_address=address,
                source_block=blocks[index - 1],
                users=share,
            )
        )
    return specs


def predicted_spread(
    specs: Sequence[GeneratorSpec], nodes: Sequence[str], buckets: int = DEFAULT_BUCKETS
) -> dict[str, int]:
    """Users per node as the LB will place them: its jhash of each source address into its bucket table."""
    owners = bucket_owners(list(nodes), buckets)
    counts = dict.fromkeys(sorted(nodes), 0)
    for spec in specs:
        for ip in spec.sources():
            counts[owners[bucket_of(str(ip), buckets)]] += 1
    return counts


def address_batch(spec: GeneratorSpec, device: str = "eth0") -> str:
    """`ip -batch` input that puts every user's source address on the generator's interface."""
    return "".join(f"address add {ip}/32 dev {device}\n" for ip in spec.sources())


@dataclass(frozen=True)
class GeneratorSettings:
    """What every generator's strongswan.conf says besides its own addresses and names."""

    vip: str
    vpn_name: str
    ike_proposal: str
    esp_proposal: str
    init_limit: int = 32
    threads: int = 8
    dpd_delay: int = 30
    keyingtries: int = 3
    retransmit_timeout: float = 2.0
    retransmit_base: float = 1.4
    retransmit_tries: int = 4
    log_level: int = -1


def render_generator_conf(template: str, spec: GeneratorSpec, settings: GeneratorSettings) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    return env.from_string(template).render(generator=spec, settings=settings)


# --------------------------------------------------------------------------- the concentrators' side


def parse_swanctl(text: str) -> dict[str, Any]:
    """swanctl.conf / strongswan.conf syntax into nested dicts (sections, `key = value`; no includes)."""
    root: dict[str, Any] = {}
    stack = [root]
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line == "}":
            if len(stack) == 1:
                raise SvpnError(f"swanctl.conf line {number}: '}}' without a section")
            stack.pop()
        elif line.endswith("{") and "=" not in line:
            section: dict[str, Any] = {}
            stack[-1][line[:-1].strip()] = section
            stack.append(section)
        elif "=" in line:
            key, value = line.split("=", 1)
            stack[-1][key.strip()] = value.strip()
        elif line.startswith("include "):
            continue
        else:
            raise SvpnError(f"swanctl.conf line {number}: cannot read {raw.strip()!r}")
    if len(stack) != 1:
        raise SvpnError("swanctl.conf: a section is not closed")
    return root


def _vici_value(key: str, value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _vici_value(k, v) for k, v in value.items()}
    if key in LIST_KEYS:
        return [item.strip() for item in str(value).split(",") if item.strip()]
    return value


@dataclass(frozen=True)
class NodePool:
    name: str
    cidr: IPv4Network

    @property
    def usable(self) -> int:
        return max(self.cidr.num_addresses - POOL_RESERVED_ADDRESSES, 0)


def node_conn(conf: Mapping[str, Any], conn: str = "svpn") -> dict[str, Any]:
    try:
        return dict(conf["connections"][conn])
    except (KeyError, TypeError):
        raise SvpnError(f"the node's swanctl.conf has no connection {conn!r}") from None


def node_pool(conf: Mapping[str, Any], conn: str = "svpn") -> NodePool:
    """The node's own pool: the connection's first pool and its addresses from the `pools` section."""
    pools = _vici_value("pools", node_conn(conf, conn).get("pools", ""))
    if not pools:
        raise SvpnError(f"connection {conn!r} has no pool on this node")
    try:
        cidr = IPv4Network(str(conf["pools"][pools[0]]["addrs"]))
    except (KeyError, TypeError, ValueError):
        raise SvpnError(f"pool {pools[0]!r} has no addrs in CIDR form in the node's swanctl.conf") from None
    return NodePool(pools[0], cidr)


def loadtest_conn(
    conf: Mapping[str, Any], ca_dn: str, pools: Sequence[str], conn: str = "svpn"
) -> dict[str, Any]:
    """The temporary connection for a `load-conn`: the node's own *conn* for load-test users only.

    Everything the node runs is kept (proposals, timers, unique policy, traffic selectors, the local
    identity), so a load-test user costs the node what a real one does. Only the remote side differs:
    the load-test names (ID_PATTERN) from the load-test CA (ca_id: trusted through a temporary
    authority, removed afterwards), and the pools (the node's own, then an overflow pool if any).
    """
    source = node_conn(conf, conn)
    message: dict[str, Any] = {}
    for key, value in source.items():
        if key.startswith("remote"):
            continue
        if key.startswith("local") and isinstance(value, dict):
            message[key] = {k: _vici_value(k, v) for k, v in value.items() if k not in FILE_LIST_KEYS}
        elif key == "children" and isinstance(value, dict):
            children = list(value.values())
            if not children:
                raise SvpnError(f"connection {conn!r} has no children")
            message["children"] = {CONN_NAME: _vici_value("child", children[0])}
        else:
            message[key] = _vici_value(key, value)
    message["remote"] = {
        "auth": "pubkey",
        "id": ID_PATTERN,
        "ca_id": ca_dn,
        # The temporary load-test CA publishes no CRL: the farm's `strict` would refuse every load-test user.
        "revocation": "relaxed",
    }
    message["pools"] = list(pools)
    # Load-test users have names of their own: `replace` would cost the same, but keep them apart.
    message["unique"] = source.get("unique", "no")
    return {CONN_NAME: message}


def overflow_pools(
    pools: Mapping[str, NodePool], users: int, reserved: Iterable[IPv4Network] = ()
) -> dict[str, IPv4Network]:
    """Extra pools for nodes whose own pool cannot hold their share after one node is lost.

    A node's share after a loss is users / (nodes - 1), plus 10 % for the hash's unevenness. Blocks come
    from OVERFLOW_POOL_RANGE, clear of every node pool and anything in *reserved*.
    """
    nodes = sorted(pools)
    if not nodes:
        return {}
    survivors = max(len(nodes) - 1, 1)
    need = math.ceil(users / survivors * 1.1)
    taken = [*reserved, *(pool.cidr for pool in pools.values())]
    result: dict[str, IPv4Network] = {}
    cursor = int(OVERFLOW_POOL_RANGE.network_address)
    end = int(OVERFLOW_POOL_RANGE.broadcast_address) + 1
    for node in nodes:
        deficit = need - pools[node].usable
        if deficit <= 0:
            continue
        size = 1 << max(2, math.ceil(math.log2(deficit + POOL_RESERVED_ADDRESSES)))
        cursor = (cursor + size - 1) // size * size  # aligned
        if cursor + size > end:
            raise SvpnError(
                f"--users: {users} users need overflow pools beyond {OVERFLOW_POOL_RANGE} "
                "(the nodes' own pools are too small); test fewer users or give the nodes larger pools"
            )
        block = IPv4Network((cursor, 32 - int(math.log2(size))))
        if any(block.overlaps(other) for other in taken):
            raise SvpnError(f"overflow pool {block} for {node} overlaps a pool in use")
        result[node] = block
        cursor += size
    return result


def conn_leftovers(conns: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of load-test connections still loaded (from `list-conns` replies)."""
    return sorted(name for entry in conns for name in entry if name == CONN_NAME)


def cert_leftovers(subjects: Iterable[str]) -> list[str]:
    """Load-test certificates (the CA or users) still known to charon (subjects from `list-certs`)."""
    return sorted({s for s in subjects if "svpn-loadtest" in s or s.startswith(CA_DN_PREFIX)})


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


_PING_COUNTS = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
_PING_RTT = re.compile(r"rtt min/avg/max/mdev = ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")


def ping_summary(output: str) -> dict[str, Any]:
    """Sent, received, loss and round-trip times from iputils ``ping -q`` output (None where absent)."""
    counts = _PING_COUNTS.search(output)
    sent, received = (int(counts.group(1)), int(counts.group(2))) if counts else (0, 0)
    rtt = _PING_RTT.search(output)
    return {
        "sent": sent,
        "received": received,
        "loss_pct": round((sent - received) / sent * 100, 1) if sent else None,
        "rtt_avg_ms": float(rtt.group(2)) if rtt else None,
        "rtt_max_ms": float(rtt.group(3)) if rtt else None,
    }


def traffic_line(sample: Mapping[str, Mapping[str, Any]], users_up: int) -> str:
    """One summary line for the traffic sent through the lab clients' tunnels with the load up."""
    if not sample:
        return "traffic through a sample of tunnels: no lab client had a tunnel (skipped)"
    through = sum(1 for row in sample.values() if row.get("through_tunnel"))
    sent = sum(row["sent"] for row in sample.values())
    received = sum(row["received"] for row in sample.values())
    avgs = [row["rtt_avg_ms"] for row in sample.values() if row.get("rtt_avg_ms") is not None]
    maxes = [row["rtt_max_ms"] for row in sample.values() if row.get("rtt_max_ms") is not None]
    rtt = f"; rtt avg {sum(avgs) / len(avgs):.1f} ms, max {max(maxes):.1f} ms" if avgs else ""
    loss = (sent - received) / sent * 100 if sent else 100.0
    return (
        f"traffic with {users_up} users up: {through} of {len(sample)} lab clients reached the app through "
        f"their tunnel; ping {received}/{sent} answered ({loss:.1f} % loss){rtt}"
    )


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The human summary printed at the end of a run (the JSON carries the same figures)."""
    lines = []
    ramp = report["ramp"]
    up, users = ramp["up"], report["users"]
    when = ramp["time_to_all_up_s"]
    lines.append(
        f"users up: {up} of {users}"
        + (f" in {when:.1f} s" if when is not None else " (not all)")
        + f"; failures {ramp['failed']}; retransmits {ramp['retransmits']}"
    )
    for reason, count in ramp["failures"].items():
        lines.append(f"  failed: {count} x {reason}")
    spread_info = report["spread"]
    lines.append(
        f"spread: {spread_info['counts']} (mean {spread_info['mean']}, "
        f"max deviation {spread_info['max_deviation_pct']} %)"
    )
    lines.append(f"{'process':<14}{'users':>7}{'CPU s':>8}{'ms/setup':>10}{'RSS KiB/user':>14}")
    for kind in ("concentrators", "generators"):
        for name, row in report[kind].items():
            ms = row.get("cpu_ms_per_setup")
            rss = row.get("rss_kib_per_user")
            lines.append(
                f"{name:<14}{row['users']:>7}{row['cpu_s']:>8.1f}"
                f"{(f'{ms:.2f}' if ms is not None else '-'):>10}"
                f"{(f'{rss:.1f}' if rss is not None else '-'):>14}"
            )
    curve = report["ramp"].get("cost_curve") or []
    if curve:
        lines.append(
            "ms of CPU per setup as users accumulate (nodes / generators): "
            + ", ".join(
                f"{row['users_up']}: {row['nodes_ms_per_setup']}/{row['generators_ms_per_setup']}"
                for row in curve
            )
        )
    flaps = sum(1 for events in (report.get("lb_events") or {}).values() for e in events if ": DOWN:" in e)
    if flaps:
        lines.append(f"LB health checks marked a node down {flaps} times during the run (see lb_events)")
    machine = report.get("machine", {})
    if machine:
        lines.append(
            f"machine: {machine['cores']} cores, {machine['busy_pct']} % busy during the ramp; "
            f"generators used {machine['generator_share_pct']} % of the CPU the farm and generators used"
        )
    storm = report.get("storm")
    if storm:
        back = storm.get("recovery_s")
        lines.append(
            f"reconnect storm: {storm['node']} stopped with {storm['users_lost']} users; "
            + (f"all back on the survivors in {back:.1f} s" if back is not None else "not all came back")
            + f" ({storm['users_back']} back; LBs moved its buckets at {storm.get('lbs_moved_buckets_s')} s, "
            f"first back {storm.get('first_back_s')} s, half {storm.get('half_back_s')} s)"
        )
    if "sample_traffic" in report:
        lines.append(traffic_line(report["sample_traffic"], report["ramp"]["up"]))
    if report.get("lab_clients_still_down"):
        lines.append(f"lab clients still down after the run: {', '.join(report['lab_clients_still_down'])}")
    cleanup = report.get("cleanup", {})
    if cleanup:
        lines.append(
            "cleanup: " + ("nothing of the load test remains" if cleanup.get("clean") else f"LEFT: {cleanup}")
        )
    return lines


def problems(report: Mapping[str, Any]) -> list[str]:
    """Why a run does not count as passed: users missing or failed, uneven spread, leftovers."""
    found = []
    ramp = report.get("ramp", {})
    users = report.get("users", 0)
    if ramp.get("up", 0) < users:
        found.append(f"{ramp.get('up', 0)} of {users} users up")
    if ramp.get("failed"):
        found.append(f"{ramp['failed']} failures ({', '.join(ramp.get('failures', {}))})")
    spread_info = report.get("spread", {})
    if spread_info and spread_info.get("max_deviation_pct", 0) > SPREAD_LIMIT_PCT:
        found.append(
            f"spread {spread_info['counts']} deviates {spread_info['max_deviation_pct']} % from the mean"
        )
    counted = sum((spread_info or {}).get("counts", {}).values())
    if spread_info and counted < users:
        found.append(f"the concentrators hold {counted} complete load-test SAs, not {users}")
    sample = report.get("sample_traffic") or {}
    blocked = [name for name, row in sample.items() if not row["through_tunnel"]]
    if blocked:
        found.append(f"lab clients with a tunnel that did not reach the app through it: {', '.join(blocked)}")
    storm = report.get("storm")
    if storm and storm.get("recovery_s") is None:
        found.append(
            f"reconnect storm: {storm.get('users_back')} of {storm.get('users_lost')} users came back"
        )
    cleanup = report.get("cleanup", {})
    if not cleanup.get("clean", False):
        found.append(f"left behind: {cleanup.get('left')}")
    if report.get("cleanup_errors"):
        found.append(f"clean-up errors: {report['cleanup_errors']}")
    return found
