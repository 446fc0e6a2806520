"""What `svpn status` asks each host and how it reads the answers. Pure: the command every concentrator
runs and the one every LB runs (:mod:`svpn.helpdesk.status_read` runs them through Ansible), and the reading
of their output into :class:`NodeStatus`, :class:`LbStatus` and the pair's :class:`LbPair`.

Each command prints its parts under marker lines (``### svpn-status NAME [VALUE]``), so one round trip per
host carries them all and a part that fails (swanctl cannot reach charon) leaves the others readable.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from svpn.farm.facts import DEFAULT_NODE_STATE, DRAIN
from svpn.farm.lbhealth import STATE_DIR
from svpn.helpdesk.remote import HostResult

MARK = "### svpn-status "
ANSWER_SECONDS = 5  # how long a host's swanctl may take to answer before charon counts as not answering
DAEMONS = ("keepalived", "conntrackd", "svpn-lb-health")
STATE_FILE = f"{STATE_DIR}/state.json"  # the LB health checker's view, rewritten every round
ROLE_REVOCATION = "strict"  # concentrator_revocation's default (roles/concentrator/defaults): fail-closed
DRAIN_TABLE = "inet svpn_drain"  # roles/concentrator/tasks/drain.yml: the node refuses new IKE SAs


def part(name: str, command: str) -> str:
    """Print a marker, run *command* with its errors on stdout, then a marker with its exit status (on a line
    of its own: a file's last line may lack its newline)."""
    return f"echo '{MARK}{name}'; {command} 2>&1; rc=$?; echo; echo \"{MARK}{name}-rc $rc\""


# Ansible templates the commands per host: the inventory's view of the node and the VIPs travels with the
# host's own answer. `timeout`: a hung charon must not hold up the whole status.
CONCENTRATOR_COMMAND = "; ".join(
    [
        f"echo '{MARK}inventory-state {{{{ concentrator_state | default(\"{DEFAULT_NODE_STATE}\") }}}}'",
        f"echo '{MARK}revocation {{{{ concentrator_revocation | default(\"{ROLE_REVOCATION}\") }}}}'",
        part("stats", f"timeout {ANSWER_SECONDS} swanctl --stats --raw"),
        part("pools", f"timeout {ANSWER_SECONDS} swanctl --list-pools --raw"),
        part("conns", f"timeout {ANSWER_SECONDS} swanctl --list-conns --raw"),
        part("tables", "nft list tables"),
    ]
)
LB_COMMAND = "; ".join(
    [
        f"echo '{MARK}public-vip {{{{ svpn_public_address }}}}'",
        f"echo '{MARK}inside-vip {{{{ svpn_lb_inside_address | default(\"\") }}}}'",
        part("now", "date +%s"),
        part("addresses", "ip -o -4 addr show"),
        part("daemons", f'for d in {" ".join(DAEMONS)}; do echo "$d $(systemctl is-active $d)"; done'),
        part("state", f"cat {STATE_FILE}"),
    ]
)


@dataclass(frozen=True)
class Part:
    value: str  # what follows the part's name on its marker line
    text: str  # the lines up to the next marker
    rc: int | None  # the exit status of its command (None: a part without a command, or cut short)


# One Ansible run for both groups: each host templates the command of its own group (group_names).
FARM_PATTERN = "concentrators:loadbalancers"


def farm_command(lb_command: str, concentrator_command: str) -> str:
    """One command for :data:`FARM_PATTERN`: an LB runs *lb_command*, a concentrator the other."""
    return (
        "{% if 'loadbalancers' in group_names %}"
        + lb_command
        + "{% else %}"
        + concentrator_command
        + "{% endif %}"
    )


def per_host(hosts: list[str], got: dict[str, HostResult] | str) -> dict[str, HostResult | None]:
    """Each of *hosts*' answer from one run (None: Ansible did not try it); a run that failed as a whole
    (*got* is its error) makes every host unreachable with that error."""
    if isinstance(got, str):
        return {h: HostResult(h, None, "", "", unreachable=True, message=got) for h in hosts}
    return {h: got.get(h) for h in hosts}


def parts(stdout: str) -> dict[str, Part]:
    """The parts of a host's answer by name."""
    found: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    current = None
    for line in stdout.replace("\r\n", "\n").split("\n"):
        if line.startswith(MARK):
            name, _, value = line[len(MARK) :].partition(" ")
            values[name], current = value.strip(), name
            found[name] = []
        elif current is not None:
            found[current].append(line)
    result = {}
    for name, lines in found.items():
        if name.endswith("-rc"):
            continue
        rc_text = values.get(f"{name}-rc", "")
        rc = int(rc_text) if rc_text.isdigit() else None
        result[name] = Part(values[name], "\n".join(lines).strip(), rc)
    return result


# --------------------------------------------------------------------------- concentrators


@dataclass(frozen=True)
class Pool:
    name: str
    base: str
    size: int
    online: int  # leased to a connected client
    offline: int  # leased before, kept for a returning client

    @property
    def percent(self) -> float:
        return 100.0 * self.online / self.size if self.size else 0.0


@dataclass(frozen=True)
class Charon:
    ike_sas: int
    half_open: int
    since: str  # as charon says it: "Nov 30 10:27:57 2026"


_IKESAS = re.compile(r"ikesas \{total=(\d+) half-open=(\d+)\}")
_SINCE = re.compile(r"uptime \{running=[^{}]*? since=([^{}]*)\}")
_POOL = re.compile(r"([^\s{}]+) \{base=(\S+) size=(\d+) online=(\d+) offline=(\d+)\}")
_CONN = re.compile(r"^list-conn event \{(\S+) \{", re.M)


def parse_stats(text: str) -> Charon | None:
    """charon's IKE SA counts from `swanctl --stats --raw`; None when charon did not answer."""
    found = _IKESAS.search(text)
    if not text.startswith("stats reply") or found is None:
        return None
    since = _SINCE.search(text)
    return Charon(int(found.group(1)), int(found.group(2)), since.group(1) if since else "")


def parse_pools(text: str) -> list[Pool]:
    """The virtual IP pools from `swanctl --list-pools --raw`."""
    if not text.startswith("get-pools reply"):
        return []
    return [
        Pool(m.group(1), m.group(2), int(m.group(3)), int(m.group(4)), int(m.group(5)))
        for m in _POOL.finditer(text)
    ]


def parse_conns(text: str) -> list[str]:
    """The names of the connections charon has loaded, from `swanctl --list-conns --raw`."""
    return _CONN.findall(text)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def no_answer(result: HostResult | None) -> str:
    """Why a host gave no answer: Ansible could not reach it, or could not run the command there (what the
    connection said: "No such container", "sudo: a password is required")."""
    if result is None:
        return "Ansible gave no result for it"
    if result.unreachable:
        return result.why
    said = _first_line(result.stderr) or _first_line(result.stdout) or result.why
    return f"the command could not run there: {said}"


def charon_silence(part: Part | None) -> str:
    """Why swanctl got no answer from charon, in one line."""
    if part is None:
        return "the host's answer has no swanctl output"
    if part.rc == 124:
        return f"swanctl got no answer within {ANSWER_SECONDS} s"
    return _first_line(part.text) or f"swanctl exited with {part.rc}"


@dataclass(frozen=True)
class NodeStatus:
    name: str
    state: str  # active, draining or down
    why: (
        str  # down: unreachable (Ansible's reason) or charon not answering (swanctl's); draining: who says so
    )
    users: int | None  # established IKE SAs (charon's total less the half-open ones); None when down
    ike_sas: int | None
    half_open: int | None
    pools: tuple[Pool, ...]
    connections: tuple[str, ...]  # the connections charon has loaded (none: it refuses every user)
    charon_since: str
    inventory_state: str  # concentrator_state in the inventory (active or drain)
    revocation: str  # concentrator_revocation (strict: a node refuses every user once its CRL is past due)
    drain_table: bool  # the node refuses new IKE SAs (its nft table inet svpn_drain)
    drained_on: tuple[str, ...]  # the LBs whose health checker holds it in admin state drain
    reachable: bool


def _drained_on(lb_admin: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(sorted(lb for lb, admin in lb_admin.items() if admin == DRAIN))


def _drain_sources(inventory_state: str, table: bool, lb_admin: Mapping[str, str]) -> list[str]:
    sources = []
    if table:
        sources.append(f"the node refuses new IKE SAs (nft table {DRAIN_TABLE})")
    if inventory_state == DRAIN:
        sources.append("the inventory says concentrator_state: drain")
    drained_on = _drained_on(lb_admin)
    if drained_on:
        sources.append(f"admin state drain on {', '.join(drained_on)}")
    return sources


def node_status(name: str, result: HostResult | None, lb_admin: Mapping[str, str]) -> NodeStatus:
    """A concentrator's state from its answer to :data:`CONCENTRATOR_COMMAND` (None: no answer at all) and
    the admin state each LB's health checker holds for it."""
    if result is None or not result.ok:
        why = no_answer(result)
        drained_on = _drained_on(lb_admin)
        return NodeStatus(name, "down", why, None, None, None, (), (), "", "", "", False, drained_on, False)
    found = parts(result.stdout)
    inventory_state = found["inventory-state"].value if "inventory-state" in found else ""
    revocation = found["revocation"].value if "revocation" in found else ""
    table = "tables" in found and f"table {DRAIN_TABLE}" in found["tables"].text.splitlines()
    charon = parse_stats(found["stats"].text) if "stats" in found else None
    pools = tuple(parse_pools(found["pools"].text)) if "pools" in found else ()
    connections = tuple(parse_conns(found["conns"].text)) if "conns" in found else ()
    drained = _drain_sources(inventory_state, table, lb_admin)
    if charon is None:
        state, why = "down", f"charon not answering: {charon_silence(found.get('stats'))}"
    elif not connections or not pools:
        missing = " and ".join(
            w for w, held in (("connection", connections), ("virtual IP pool", pools)) if not held
        )
        state, why = (
            "down",
            (
                f"charon answers but has no {missing} loaded: it refuses every user "
                "(swanctl --load-all on the node, or site.yml, loads them)"
            ),
        )
    elif drained:
        state, why = "draining", "; ".join(drained)
    else:
        state, why = "active", ""
    return NodeStatus(
        name=name,
        state=state,
        why=why,
        users=charon.ike_sas - charon.half_open if charon else None,
        ike_sas=charon.ike_sas if charon else None,
        half_open=charon.half_open if charon else None,
        pools=pools,
        connections=connections,
        charon_since=charon.since if charon else "",
        inventory_state=inventory_state,
        revocation=revocation,
        drain_table=table,
        drained_on=_drained_on(lb_admin),
        reachable=True,
    )


# --------------------------------------------------------------------------- load balancers


@dataclass(frozen=True)
class Daemon:
    name: str
    state: str  # as `systemctl is-active` says: active, inactive, failed, activating...


@dataclass(frozen=True)
class HealthView:
    """One concentrator as an LB's health checker sees it (its state.json)."""

    node: str
    address: str
    admin: str  # active or drain
    up: bool
    reason: str
    since: str  # ISO 8601, UTC


@dataclass(frozen=True)
class BucketCount:
    node: str
    buckets: int


@dataclass(frozen=True)
class LbStatus:
    name: str
    reachable: bool
    why: str  # why the LB gave no answer, or no health view
    public_vip: str
    holds_public_vip: bool
    inside_vip: str  # "" when the inventory has none
    holds_inside_vip: bool
    daemons: tuple[Daemon, ...]
    view: tuple[HealthView, ...]
    view_age: float | None  # seconds since the checker wrote its view; None without a view
    buckets: tuple[BucketCount, ...]  # owners in its table, counted


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def count_buckets(table: Sequence[str]) -> tuple[BucketCount, ...]:
    return tuple(BucketCount(node, n) for node, n in sorted(Counter(table).items()))


def _daemon(line: str) -> Daemon:
    name, _, state = line.strip().partition(" ")
    return Daemon(name, state.strip() or "unknown")


def _unreachable_lb(name: str, why: str) -> LbStatus:
    return LbStatus(name, False, why, "", False, "", False, (), (), None, ())


def parse_lb(name: str, result: HostResult | None) -> tuple[LbStatus, list[str]]:
    """An LB's status from its answer to :data:`LB_COMMAND`, and its bucket table ([] without one)."""
    if result is None or not result.ok:
        return _unreachable_lb(name, no_answer(result)), []
    found = parts(result.stdout)
    empty = Part("", "", None)
    public, inside = found.get("public-vip", empty).value, found.get("inside-vip", empty).value
    held = set(re.findall(r"\binet (\d+\.\d+\.\d+\.\d+)/", found.get("addresses", empty).text))
    daemons = tuple(_daemon(line) for line in found.get("daemons", empty).text.splitlines() if line.strip())
    why, view, age, table = "", (), None, []
    state_text = found.get("state", empty).text
    try:
        state = json.loads(state_text)
        view = tuple(
            HealthView(n["name"], n["address"], n["admin"], bool(n["up"]), n["reason"], _iso(n["since"]))
            for n in state["nodes"]
        )
        table = [str(owner) for owner in state["table"]]
        now = found.get("now", empty).text
        age = max(0.0, float(now) - float(state["time"])) if now.isdigit() else None
    except (ValueError, KeyError, TypeError):
        why = f"no health view in {STATE_FILE}: {_first_line(state_text) or 'unreadable'}"
    lb = LbStatus(
        name=name,
        reachable=True,
        why=why,
        public_vip=public,
        holds_public_vip=bool(public) and public in held,
        inside_vip=inside,
        holds_inside_vip=bool(inside) and inside in held,
        daemons=daemons,
        view=view,
        view_age=age,
        buckets=count_buckets(table),
    )
    return lb, table


@dataclass(frozen=True)
class VipHolders:
    vip: str  # "public" or "inside"
    address: str
    holders: tuple[str, ...]
    verdict: str  # ok (exactly one LB), none, split brain


@dataclass(frozen=True)
class LbPair:
    vips: tuple[VipHolders, ...]
    table_from: str  # the LB whose bucket table is counted: the public VIP's holder when there is exactly one
    buckets: tuple[BucketCount, ...]
    differences: tuple[str, ...]  # how the other LBs' tables differ from it


def _holders(lbs: Sequence[LbStatus], which: str) -> VipHolders | None:
    reachable = [lb for lb in lbs if lb.reachable]
    address = next((getattr(lb, f"{which}_vip") for lb in reachable if getattr(lb, f"{which}_vip")), "")
    if not address:
        return None
    holders = tuple(lb.name for lb in reachable if getattr(lb, f"holds_{which}_vip"))
    verdict = {0: "none", 1: "ok"}.get(len(holders), "split brain")
    return VipHolders(which, address, holders, verdict)


def lb_pair(lbs: Sequence[LbStatus], tables: Mapping[str, Sequence[str]]) -> LbPair:
    """Who holds the VIPs, and the bucket owners as the active LB has them, with how the other LBs' tables
    differ."""
    vips = tuple(v for v in (_holders(lbs, "public"), _holders(lbs, "inside")) if v is not None)
    with_table = [lb.name for lb in lbs if tables.get(lb.name)]
    public = next((v for v in vips if v.vip == "public"), None)
    holder = public.holders[0] if public is not None and public.verdict == "ok" else ""
    reference = holder if holder in with_table else (with_table[0] if with_table else "")
    if not reference:
        return LbPair(vips, "", (), ())
    table = list(tables[reference])
    differences = []
    for name in with_table:
        other = list(tables[name])
        if name == reference or other == table:
            continue
        moved = sum(a != b for a, b in zip(other, table, strict=False)) + abs(len(other) - len(table))
        counts = ", ".join(f"{c.node} {c.buckets}" for c in count_buckets(other))
        differences.append(
            f"{name}'s table differs from {reference}'s in {moved} of {len(table)} buckets ({counts})"
        )
    return LbPair(vips, reference, count_buckets(table), tuple(differences))
