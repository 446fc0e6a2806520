"""The load generators as data: how many, their addresses and users, their pace, their strongswan.conf and
the throwaway CA that issues their users' certificates. Pure logic.

Nothing here touches docker, sockets or files: `svpn.loadtest.driver` starts and drives the generators.
The plan: how many load-generator hosts, their addresses on the farm's public network, and one block of
per-user source addresses each (inside ``SOURCE_RANGE``; the LBs route each block back to its generator for
the run), and the users per node the LBs' hash will give. The generator's strongswan.conf is rendered from
``loadgen/strongswan.conf.j2``. Imports svpn.access (the CA certificate), svpn.farm (the LB hash) and
svpn.core.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

import jinja2
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from svpn.access.pki.certs import ca_certificate
from svpn.core.errors import SvpnError
from svpn.farm.buckets import DEFAULT_BUCKETS, bucket_owners
from svpn.farm.lbhash import bucket_of
from svpn.loadtest.names import GENERATOR_CONTAINER_PREFIX, ID_SUFFIX, SOURCE_RANGE

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
    cert = ca_certificate(key, name, now - dt.timedelta(hours=1), now + lifetime, signs_data=True)
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
