"""svpn-lb-health: keep the LB's bucket table on concentrators that answer IKE and take new flows.

Every interval it sends each concentrator an IKEv2 IKE_SA_INIT (ike-scan). Any IKE answer - even
NO_PROPOSAL_CHOSEN or a COOKIE request - proves charon is alive and answering on that address. A node is
down after `fall` probes without an answer and up after `rise` answered ones. The table's owners are the
nodes that are up and in admin state "active" (a "drain" node keeps its established flows but gets no new
ones), computed by svpn.farm.buckets - the same code the deploy-time table and the load test use.

When a node goes down its flows are deleted from conntrack, so its users' retries hash afresh onto the
survivors instead of following a stale DNAT mapping. Every change is logged with its reason; the current
view is written to /run/svpn-lb/state.json for operators and auditors. SIGHUP re-reads the backends.
`svpn-lb-health probe ADDRESS` sends one probe and exits 0 when IKE answered (playbooks/scale.yml).

This module runs on the LB under Debian's python3, copied there by roles/loadbalancer together with the
svpn modules it imports: it may import only the standard library, svpn.farm.buckets, svpn.farm.facts and
svpn.core. Its I/O (commands, files, clocks, the log) goes through :class:`Host`; the rest is pure and
unit-tested.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from svpn.core.files import atomic_write
from svpn.farm.buckets import bucket_owners
from svpn.farm.facts import ACTIVE

CONFIG = Path("/etc/svpn-lb/backends.json")
# Runtime admin states set by playbooks/drain.yml ({"conc2": "drain"}); they win over backends.json and
# survive deploys, so a re-run of site.yml does not undrain a node in maintenance.
ADMIN = Path("/etc/svpn-lb/admin-state.json")
STATE_DIR = Path("/run/svpn-lb")
RESYNC_SECONDS = 10
TABLE = "inet svpn_lb"  # the nft table of roles/loadbalancer/templates/nftables.conf.j2

_SUMMARY = re.compile(r"(\d+) returned handshake; (\d+) returned notify")
_FLOW = re.compile(r"src=(\S+) dst=\S+ sport=(\d+) dport=\d+ .*?src=(\S+) dst=")
_DELETED = re.compile(r"(\d+) flow entries have been deleted")


# --------------------------------------------------------------------------- I/O edges


class Done(NamedTuple):
    """What a command left: its exit status and its text output."""

    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    def __call__(
        self, argv: Sequence[str], stdin: str | None = None, timeout: float | None = None
    ) -> Done: ...


def run_command(argv: Sequence[str], stdin: str | None = None, timeout: float | None = None) -> Done:
    """Run *argv* with text in and out; raises subprocess.TimeoutExpired after *timeout* seconds."""
    done = subprocess.run(
        list(argv), input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    return Done(done.returncode, done.stdout, done.stderr)


def print_line(message: str) -> None:
    """The checker's log: stdout, which systemd sends to the journal."""
    print(message, flush=True)


@dataclass
class Host:
    """The checker's window on the LB host: commands, files, clocks and the log (tests replace them)."""

    run: Runner = run_command
    log: Callable[[str], None] = print_line
    wall: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    config: Path = CONFIG
    admin: Path = ADMIN
    state_dir: Path = STATE_DIR


# --------------------------------------------------------------------------- the probe


def ike_answered(ike_scan_output: str) -> bool:
    """Whether ike-scan's summary counts any answer: a handshake or a notify (NO_PROPOSAL_CHOSEN, COOKIE)."""
    found = _SUMMARY.search(ike_scan_output)
    return found is not None and int(found.group(1)) + int(found.group(2)) > 0


def probe(address: str, timeout_ms: int, run: Runner = run_command) -> tuple[bool, str]:
    """Send *address* one IKEv2 IKE_SA_INIT: (answered, why)."""
    argv = ["ike-scan", "--ikev2", "--sport=0", "--retry=1", f"--timeout={timeout_ms}", address]
    try:
        out = run(argv, timeout=timeout_ms / 1000 + 5).stdout
    except subprocess.TimeoutExpired:
        return False, "ike-scan hung"
    if ike_answered(out):
        return True, "IKE answered"
    return False, f"no IKE answer from {address} within {timeout_ms} ms"


# --------------------------------------------------------------------------- nodes and the table


@dataclass
class Node:
    """One concentrator as the checker sees it."""

    name: str
    address: str
    admin: str
    up: bool = True  # the deploy-time table assumes every node up; probes correct it within `fall`
    streak: int = 0  # consecutive probe results contradicting `up`
    reason: str = "assumed up at start"
    since: float = field(default_factory=time.time)

    def count(self, ok: bool, why: str, fall: int, rise: int, now: float) -> bool:
        """Count one probe result; True when it turns the node up (`rise` answers in a row) or down
        (`fall` misses in a row)."""
        self.streak = 0 if ok == self.up else self.streak + 1
        needed = rise if ok else fall
        if self.streak < needed:
            return False
        self.up, self.streak, self.since = ok, 0, now
        self.reason = f"{why} ({needed} probes in a row)"
        return True

    def state(self) -> dict[str, Any]:
        """The node's entry in state.json."""
        return {
            "name": self.name,
            "address": self.address,
            "admin": self.admin,
            "up": self.up,
            "reason": self.reason,
            "since": self.since,
        }


def table_owners(nodes: Iterable[Node], buckets: int) -> list[str] | None:
    """Each bucket's owner among the nodes that are up and active; None when there is none."""
    eligible = sorted(n.name for n in nodes if n.up and n.admin == ACTIVE)
    return bucket_owners(eligible, buckets) if eligible else None


def table_script(nodes: Iterable[Node], owners: Sequence[str]) -> str:
    """The nft script that sets the bucket map and the `down` and `accepting` sets in one transaction:
    packets see the old state or the new one."""
    nodes = list(nodes)
    address = {n.name: n.address for n in nodes}
    elements = ", ".join(f"{bucket} : {address[owner]}" for bucket, owner in enumerate(owners))
    script = f"flush map {TABLE} buckets\nadd element {TABLE} buckets {{ {elements} }}\n"
    script += f"flush set {TABLE} down\nflush set {TABLE} accepting\n"
    down = [n.address for n in nodes if not n.up]
    if down:
        script += f"add element {TABLE} down {{ {', '.join(down)} }}\n"
    accepting = ", ".join(address[name] for name in sorted(set(owners)))
    script += f"add element {TABLE} accepting {{ {accepting} }}\n"
    return script


def table_change(owners: Sequence[str], applied: Sequence[str] | None) -> str | None:
    """The log line for a newly applied table; None when it equals the one applied before."""
    counts = {name: owners.count(name) for name in sorted(set(owners))}
    if applied is None:
        return f"bucket table applied (start or reload): {counts}"
    if list(owners) == list(applied):
        return None
    moved = sum(a != b for a, b in zip(owners, applied, strict=False))
    return f"bucket table applied: {counts}; {moved} of {len(owners)} buckets changed owner"


def watching(nodes: Iterable[Node]) -> str:
    """The log line after (re)loading the backends."""
    nodes = list(nodes)
    return f"watching {len(nodes)} nodes: {', '.join(f'{n.name}={n.address}({n.admin})' for n in nodes)}"


# --------------------------------------------------------------------------- the kernel's listings


class Sticky(NamedTuple):
    """The `sticky` map (source address -> backend address) and whether its listing was read whole."""

    table: dict[str, str]
    complete: bool


def read_sticky(listing: str) -> Sticky:
    """The `sticky` map from `nft -j list map inet svpn_lb sticky` (a key carrying a timeout is an object)."""
    table: dict[str, str] = {}
    try:
        for item in json.loads(listing)["nftables"]:
            for key, value in item.get("map", {}).get("elem", []):
                table[key["elem"]["val"] if isinstance(key, dict) else key] = value
    except (ValueError, KeyError, TypeError):
        return Sticky(table, False)
    return Sticky(table, True)


def sticky_sources(sticky: Mapping[str, str], backend: str) -> list[str]:
    """The source addresses the `sticky` map ties to *backend*."""
    return [source for source, pinned in sticky.items() if pinned == backend]


def flows_by_source(listing: str) -> dict[str, set[tuple[str, str]]]:
    """(backend, source port) of each source's flows, from `conntrack -L -p udp --orig-dst VIP`."""
    flows: dict[str, set[tuple[str, str]]] = {}
    for line in listing.splitlines():
        found = _FLOW.search(line)
        if found:
            source, sport, backend = found.groups()
            flows.setdefault(source, set()).add((backend, sport))
    return flows


def split_flows(listing: str) -> dict[str, set[tuple[str, str]]]:
    """The sources whose flows are pinned to more than one backend (such a client never finishes IKE_AUTH)."""
    return {src: flows for src, flows in flows_by_source(listing).items() if len({b for b, _ in flows}) > 1}


class StrayFlow(NamedTuple):
    """A flow pinned to another backend than its source's sticky one."""

    source: str
    sport: str
    backend: str
    keep: str | None  # the sticky backend (None: the source has no sticky entry)


def stray_flows(split: Mapping[str, Iterable[tuple[str, str]]], sticky: Mapping[str, str]) -> list[StrayFlow]:
    """The flows of *split* sources that disagree with the sticky map, in a stable order."""
    stray = []
    for source, flows in sorted(split.items()):
        keep = sticky.get(source)
        stray += [
            StrayFlow(source, sport, backend, keep) for backend, sport in sorted(flows) if backend != keep
        ]
    return stray


def deleted_flows(conntrack_stderr: str) -> int:
    """How many flows `conntrack -D` reported deleted."""
    found = _DELETED.search(conntrack_stderr)
    return int(found.group(1)) if found else 0


def state_document(
    nodes: Iterable[Node], owners: Sequence[str] | None, applied: Sequence[str] | None, now: float
) -> dict[str, Any]:
    """/run/svpn-lb/state.json: each node's view and the bucket table in force."""
    return {"time": now, "nodes": [n.state() for n in nodes], "table": owners or applied or []}


# --------------------------------------------------------------------------- the checker


class Checker:
    """The daemon: one probe round per interval, acting on the LB through its :class:`Host`."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.nodes: dict[str, Node] = {}
        self.config: dict[str, Any] = {}
        self.applied: list[str] | None = None
        self.applied_at = 0.0
        self.reload_requested = True
        self.force_apply = False
        self.running = True

    def load(self) -> None:
        """(Re)read backends.json and the admin states."""
        self.config = json.loads(self.host.config.read_text())
        try:
            overrides = json.loads(self.host.admin.read_text())
        except FileNotFoundError:
            overrides = {}
        self.nodes = self.merge(self.config["nodes"], overrides)
        self.force_apply = True  # re-apply at once (keeping `applied`: what changed is still known)
        self.host.log(watching(self.nodes.values()))

    def merge(self, specs: Sequence[Mapping[str, str]], overrides: Mapping[str, str]) -> dict[str, Node]:
        """The nodes of *specs*, keeping the health of those already watched."""
        first = not self.nodes
        fresh = {}
        for spec in specs:
            node = self.nodes.get(spec["name"])
            if node is None:
                node = Node(spec["name"], spec["address"], spec["state"], since=self.host.wall())
                if not first:
                    # A node added at run time (scale-out) takes new flows only once it answers IKE.
                    node.up, node.reason = False, "new: waiting for IKE answers"
            admin = overrides.get(node.name, spec["state"])
            if node.admin != admin:
                source = self.host.admin if node.name in overrides else self.host.config
                self.host.log(f"node {node.name}: admin state {node.admin} -> {admin} ({source})")
            node.address, node.admin = spec["address"], admin
            fresh[node.name] = node
        for gone in sorted(set(self.nodes) - set(fresh)):
            self.host.log(f"node {gone}: removed from backends.json")
        return fresh

    def update_health(self) -> list[Node]:
        """Probe every node at once and count the results; the nodes that went down."""
        fall, rise, timeout_ms = self.config["fall"], self.config["rise"], self.config["timeout_ms"]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(self.nodes))) as pool:
            answers = pool.map(lambda n: probe(n.address, timeout_ms, self.host.run), self.nodes.values())
            results = dict(zip(self.nodes, answers, strict=True))
        went_down = []
        for name, (ok, why) in results.items():
            node = self.nodes[name]
            if node.count(ok, why, fall, rise, self.host.wall()):
                self.host.log(f"node {name}: {'UP' if ok else 'DOWN'}: {node.reason}")
                if not ok:
                    went_down.append(node)
        return went_down

    def needs_apply(self, owners: list[str]) -> bool:
        stale = self.host.monotonic() - self.applied_at > RESYNC_SECONDS
        return self.force_apply or owners != self.applied or stale

    def apply(self, owners: list[str]) -> None:
        """Bucket map and the `down` set in one transaction: packets see the old state or the new one."""
        done = self.host.run(["nft", "-f", "-"], stdin=table_script(self.nodes.values(), owners))
        if done.returncode != 0:
            self.host.log(f"bucket table NOT applied: nft said: {done.stderr.strip()}")
            return
        change = table_change(owners, self.applied)
        if change:
            self.host.log(change)
        self.applied, self.applied_at = owners, self.host.monotonic()

    def sticky_map(self) -> dict[str, str]:
        listing = self.host.run(["nft", "-j", "list", "map", "inet", "svpn_lb", "sticky"])
        sticky = read_sticky(listing.stdout)
        if not sticky.complete:
            self.host.log(f"could not read the sticky map: {listing.stderr.strip()}")
        return sticky.table

    def forget_sticky(self, node: Node) -> None:
        """New flows of the node's users stop following them to it (a down or draining node)."""
        stale = sticky_sources(self.sticky_map(), node.address)
        if stale:
            self.host.run(
                ["nft", "-f", "-"], stdin=f"delete element {TABLE} sticky {{ {', '.join(stale)} }}\n"
            )
        self.host.log(f"node {node.name}: forgot {len(stale)} sticky source addresses")

    def forget_flows(self, node: Node) -> None:
        """Drop what pins users to a dead node: their sticky entries, then their conntrack flows."""
        self.forget_sticky(node)
        done = self.host.run(["conntrack", "-D", "-p", "udp", "--reply-src", node.address])
        self.host.log(
            f"node {node.name}: deleted {deleted_flows(done.stderr)} flows pinned to {node.address}"
        )

    def heal_split_flows(self) -> None:
        """A user's IKE (500) and NAT-T (4500) flows pinned to different nodes can never finish IKE_AUTH,
        and the client's retries keep both alive. Delete the flows that disagree with the sticky node."""
        listing = self.host.run(["conntrack", "-L", "-p", "udp", "--orig-dst", self.config["vip"]])
        split = split_flows(listing.stdout)
        if not split:
            return
        for flow in stray_flows(split, self.sticky_map()):
            delete = ["conntrack", "-D", "-p", "udp", "--orig-src", flow.source, "--sport", flow.sport]
            self.host.run([*delete, "--reply-src", flow.backend])
            self.host.log(
                f"source {flow.source}: flow from port {flow.sport} was pinned to {flow.backend}, "
                f"its other flows to {flow.keep}: deleted"
            )

    def write_state(self, owners: list[str] | None) -> None:
        """state.json, replaced atomically (readers never see half a file)."""
        state = state_document(self.nodes.values(), owners, self.applied, self.host.wall())
        # rewritten every round on /run (tmpfs): no fsync
        atomic_write(self.host.state_dir / "state.json", json.dumps(state, indent=1), 0o644, durable=False)

    def round(self) -> None:
        """One round: reload if asked, probe, re-apply the table when it changed (or every RESYNC_SECONDS),
        unpin the nodes that went down or stopped taking new flows, write state.json."""
        if self.reload_requested:
            self.reload_requested = False
            self.load()
        went_down = self.update_health()
        owners = table_owners(self.nodes.values(), self.config["buckets"])
        before = set(self.applied or ())
        if owners is None:
            self.host.log("no node is up and active: keeping the previous bucket table")
        elif self.needs_apply(owners):
            self.force_apply = False
            self.apply(owners)
            self.heal_split_flows()
        # Only after the new table is live: a retry arriving in between would be pinned again.
        for node in went_down:
            self.forget_flows(node)
        for name in sorted(before - set(owners or before)):
            drained = self.nodes.get(name)
            if drained is not None and drained.up:
                self.forget_sticky(drained)  # drained: keeps its flows, loses its stickiness
        self.write_state(owners)

    def run(self) -> None:
        while self.running:
            started = self.host.monotonic()
            self.round()
            self.host.sleep(max(0.0, self.config["interval"] - (self.host.monotonic() - started)))


# --------------------------------------------------------------------------- the command


def probe_command(address: str, timeout_ms: int | None, host: Host) -> int:
    """`svpn-lb-health probe ADDRESS`: 0 when IKE answered, 1 when not; the outcome on stdout.
    Without a timeout, the checker's own (backends.json's timeout_ms)."""
    if timeout_ms is None:
        try:
            timeout_ms = int(json.loads(host.config.read_text())["timeout_ms"])
        except (OSError, ValueError, KeyError) as err:
            host.log(f"give --timeout-ms: could not read timeout_ms from {host.config}: {err}")
            return 2
    ok, why = probe(address, timeout_ms, host.run)
    host.log(f"IKE answer from {address}" if ok else why)
    return 0 if ok else 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="svpn-lb-health", description="The LB's health checker; without a command it runs as the daemon."
    )
    commands = parser.add_subparsers(dest="command")
    one = commands.add_parser("probe", help="send one IKEv2 IKE_SA_INIT; exit 0 when IKE answered")
    one.add_argument("address", help="the concentrator's address")
    one.add_argument("--timeout-ms", type=int, help="how long to wait (default: backends.json's timeout_ms)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "probe":
        return probe_command(args.address, args.timeout_ms, Host())
    checker = Checker(Host())
    signal.signal(signal.SIGHUP, lambda *_: setattr(checker, "reload_requested", True))
    signal.signal(signal.SIGTERM, lambda *_: setattr(checker, "running", False))
    checker.run()
    return 0
