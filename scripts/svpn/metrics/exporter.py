"""svpn-exporter: the Prometheus exporter of a concentrator or an LB (run on the host by roles/exporter).

Every scrape reads cheap sources only, so it stays cheap with 10,000 SAs on a node: charon's vici `stats`,
`get-counters` and `get-pools` (counts, never a list of SAs: listing 3,300 SAs cost charon 2.9 s), the new
lines of the attempt log, one `nft -j list ruleset`, certificate files when they changed; on an LB the health
checker's state.json, the conntrack count from /proc and one `ip -j addr`. A source that fails is reported by
``svpn_exporter_source_up{source}`` = 0 and the others are still served.

Configuration: one JSON file (``--config``, written by the role), see :class:`Config`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svpn.core.errors import SvpnError
from svpn.metrics import parse
from svpn.metrics.attempt_tally import AttemptTally, LogFollower
from svpn.metrics.catalog import BY_NAME, metrics_of
from svpn.metrics.parse import Sample

KINDS = ("concentrator", "loadbalancer")


@dataclass(frozen=True)
class Config:
    kind: str
    address: str
    port: int
    vici_socket: str = "/var/run/charon.vici"
    attempt_log: str = ""  # empty: no setups/failures (the node has no attempt log)
    ignored_sources: tuple[str, ...] = ()  # the LBs' health probes come from these
    certificate_dirs: tuple[str, ...] = ("/etc/swanctl/x509", "/etc/swanctl/x509ca")
    crl_dirs: tuple[str, ...] = ("/etc/swanctl/x509crl",)
    lb_state: str = "/run/svpn-lb/state.json"
    vips: tuple[str, ...] = ()
    conntrack_count: str = "/proc/sys/net/netfilter/nf_conntrack_count"


def read_config(path: Path) -> Config:
    try:
        raw: dict[str, Any] = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise SvpnError(f"{path}: cannot read the exporter's configuration: {err}") from None
    if raw.get("kind") not in KINDS:
        raise SvpnError(f"{path}: kind: {raw.get('kind')!r} is not one of {', '.join(KINDS)}")
    known = set(Config.__dataclass_fields__)
    if unknown := sorted(set(raw) - known):
        raise SvpnError(f"{path}: unknown settings {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return Config(**values)


def run(argv: Sequence[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=5).stdout


class FileDays:
    """Days left of each certificate or CRL file, each file parsed again only when it changed."""

    def __init__(self, metric: str, until: Callable[[bytes], dt.datetime]) -> None:
        self.metric, self.until = metric, until
        self.cache: dict[Path, tuple[tuple[float, int], dt.datetime]] = {}

    def samples(self, dirs: Sequence[str], now: dt.datetime) -> list[Sample]:
        samples = []
        for path in sorted(p for d in dirs if Path(d).is_dir() for p in Path(d).iterdir() if p.is_file()):
            status = path.stat()
            stamp = (status.st_mtime, status.st_size)
            cached = self.cache.get(path)
            if cached is None or cached[0] != stamp:
                blocks = parse.der_blocks(path.read_bytes())
                cached = self.cache[path] = (stamp, min(self.until(block) for block in blocks))
            samples.append(Sample(self.metric, parse.days_left(cached[1], now), {"file": str(path)}))
        return samples


@dataclass
class Sources:
    """The readers of one host kind; each returns samples or raises."""

    config: Config
    tally: AttemptTally = field(init=False)
    follower: LogFollower | None = field(init=False)
    certs: FileDays = field(init=False)
    crls: FileDays = field(init=False)

    def __post_init__(self) -> None:
        self.tally = AttemptTally(ignored=frozenset(self.config.ignored_sources))
        self.follower = LogFollower(Path(self.config.attempt_log)) if self.config.attempt_log else None
        self.certs = FileDays("svpn_concentrator_certificate_days_left", parse.certificate_not_after)
        self.crls = FileDays("svpn_concentrator_crl_days_left", parse.crl_next_update)

    def readers(self) -> dict[str, Callable[[], list[Sample]]]:
        if self.config.kind == "loadbalancer":
            return {"lb_state": self.lb_state, "conntrack": self.conntrack, "addresses": self.vips}
        readers = {"vici": self.vici, "nftables": self.nftables, "certificates": self.files}
        if self.follower is not None:
            readers["attempt_log"] = self.attempt_log
        return readers

    def vici(self) -> list[Sample]:
        import vici  # shipped beside the svpn modules by roles/exporter (Debian does not package it)

        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(self.config.vici_socket)
            session = vici.Session(sock)
            stats = session.stats()
            samples = parse.stats_samples(stats)
            if parse.has_counters_plugin(stats):
                samples += parse.counters_samples(session.get_counters({}))
            samples += parse.pools_samples(session.get_pools({}))
        return samples

    def nftables(self) -> list[Sample]:
        return parse.nft_samples(run(["nft", "-j", "list", "ruleset"]))

    def files(self) -> list[Sample]:
        now = dt.datetime.now(dt.UTC)
        return self.certs.samples(self.config.certificate_dirs, now) + self.crls.samples(
            self.config.crl_dirs, now
        )

    def attempt_log(self) -> list[Sample]:
        assert self.follower is not None
        self.tally.feed(self.follower.read())
        self.tally.settle(time.time())
        return [Sample("svpn_concentrator_setups_total", float(self.tally.setups))] + [
            Sample("svpn_concentrator_setup_failures_total", float(n), {"cause": cause})
            for cause, n in sorted(self.tally.failures.items())
        ]

    def lb_state(self) -> list[Sample]:
        return parse.lb_state_samples(json.loads(Path(self.config.lb_state).read_text()), time.time())

    def conntrack(self) -> list[Sample]:
        count = Path(self.config.conntrack_count).read_text().strip()
        return [Sample("svpn_lb_conntrack_entries", float(count))]

    def vips(self) -> list[Sample]:
        return parse.vip_samples(run(["ip", "-j", "-4", "addr"]), self.config.vips)


def scrape(sources: Sources, log: Callable[[str], None] = print) -> list[Sample]:
    """Every source's samples, each source's health, the scrape's own wall time."""
    started = time.monotonic()
    samples: list[Sample] = []
    for name, reader in sources.readers().items():
        try:
            got = reader()
        except Exception as err:  # one failed source must not hide the others' figures
            log(f"source {name}: {type(err).__name__}: {err}")
            got, up = [], 0.0
        else:
            up = 1.0
        samples += got
        samples.append(Sample("svpn_exporter_source_up", up, {"source": name}))
        if name == "vici":
            samples.append(Sample("svpn_concentrator_charon_up", up))
    samples.append(Sample("svpn_exporter_scrape_duration_seconds", round(time.monotonic() - started, 6)))
    return samples


class Collector:
    """prometheus_client's custom collector: a scrape of the sources as metric families."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.lock = threading.Lock()  # the HTTP server serves each request in its own thread

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with self.lock:
            samples = scrape(self.sources, log=lambda m: print(m, file=sys.stderr, flush=True))
        by_name: dict[str, list[Sample]] = defaultdict(list)
        for sample in samples:
            by_name[sample.name].append(sample)
        for metric in metrics_of(self.sources.config.kind):  # type: ignore[arg-type]
            kind = CounterMetricFamily if metric.kind == "counter" else GaugeMetricFamily
            family = kind(metric.family, metric.help, labels=list(metric.labels))
            for sample in by_name.get(metric.name, []):
                family.add_metric([sample.labels[label] for label in metric.labels], sample.value)
            yield family


def check_catalog(samples: Sequence[Sample]) -> list[str]:
    """Samples whose name or labels the catalog does not define (the unit tests hold the parsers to it)."""
    wrong = []
    for sample in samples:
        metric = BY_NAME.get(sample.name)
        if metric is None or set(sample.labels) != set(metric.labels):
            wrong.append(f"{sample.name}{dict(sample.labels)}")
    return wrong


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="svpn-exporter", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("/etc/svpn-exporter/config.json"))
    parser.add_argument("--once", action="store_true", help="print one scrape's samples and exit")
    args = parser.parse_args(argv)
    try:
        config = read_config(args.config)
    except SvpnError as err:
        print(f"svpn-exporter: {err}", file=sys.stderr)
        return 2
    sources = Sources(config)
    if args.once:
        for sample in scrape(sources, log=lambda m: print(m, file=sys.stderr)):
            print(sample.name, dict(sample.labels), sample.value)
        return 0
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(sources))  # type: ignore[arg-type]
    scrape(sources, log=lambda m: print(m, file=sys.stderr))  # the attempt log's follower starts at its end
    start_http_server(config.port, addr=config.address, registry=registry)
    print(f"svpn-exporter: serving {config.kind} metrics on {config.address}:{config.port}", flush=True)
    while True:
        time.sleep(3600)
