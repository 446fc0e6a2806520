"""The report as sections of tables, notes and bar charts: one content for both pages
(:mod:`svpn.report.markdown`, :mod:`svpn.report.html`). Pure."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from svpn.report.model import Report

AUDIT_SHOWN = 500  # the newest audit entries the page lists (the chain check covers all of them)


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    empty: str = "none"  # what the page says for no rows


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    limit: float | None = None  # drawn as a mark on the bar's track
    text: str = ""  # the figure written beside the bar


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    source: str  # where its figures come from, one line
    notes: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    charts: tuple[Chart, ...] = ()
    alarm: bool = False  # something in it needs attention
    extra: dict[str, str] = field(default_factory=dict)


def _t(
    id_: str, title: str, columns: tuple[str, ...], rows: list[tuple[object, ...]], empty: str = "none"
) -> Table:
    return Table(
        id_, title, columns, tuple(tuple("-" if c is None else str(c) for c in r) for r in rows), empty
    )


def summary(r: Report) -> Section:
    verdict = (
        "no drift, every host answered, the audit chain verifies"
        if r.exit_code == 0
        else f"{len(r.differences)} difference(s) from the inventory, {len(r.unreachable)} unreachable "
        "host(s), "
        f"audit chain {'verifies' if r.audit.ok else 'BROKEN'}"
    )
    notes = [verdict, *(f"unreachable: {u}" for u in r.unreachable), *(f"{p}" for p in r.farm.problems)]
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in r.timings.items())
    rows = [
        ("inventory", r.inventory),
        ("generated", r.generated_at),
        ("concentrators", str(len(r.nodes))),
        ("load balancers", str(len(r.lbs))),
        ("users with a valid certificate", str(len(r.access.valid))),
        ("users connected now", str(len({c.user_id for c in r.access.connected}))),
        ("differences from the inventory", str(len(r.differences))),
        ("reading took", timings or "-"),
    ]
    return Section(
        "summary",
        "Summary",
        "svpn report: everything below, counted",
        tuple(notes),
        (_t("summary-table", "At a glance", ("what", "value"), rows),),
        alarm=r.exit_code != 0,
    )


def topology(r: Report) -> Section:
    lbs = []
    for lb in r.lbs:
        held = [v for v, h in (("public", lb.holds_public_vip), ("inside", lb.holds_inside_vip)) if h]
        daemons = ", ".join(f"{d.name} {d.state}" for d in lb.daemons)
        planned = r.planned.get(lb.name, {})
        lbs.append(
            (
                lb.name,
                planned.get("public"),
                planned.get("inside"),
                "yes" if lb.reachable else f"NO: {lb.why}",
                ", ".join(held) or "-",
                daemons,
            )
        )
    vips = [(v.vip, v.address, ", ".join(v.holders) or "none", v.verdict) for v in r.vips]
    nodes = []
    for n in r.nodes:
        planned = r.planned.get(n.name, {})
        live = ", ".join(f"{p.name} {p.base} ({p.size})" for p in n.pools) or "-"
        facts = r.facts.get(n.name)
        nodes.append(
            (
                n.name,
                planned.get("inside"),
                planned.get("internal"),
                planned.get("pool"),
                live,
                n.state,
                n.why,
                facts.release if facts else "-",
            )
        )
    return Section(
        "topology",
        "Topology",
        "the inventory's hosts, addresses and pools; VIP holders, daemons, charon's pools and state from the "
        "hosts",
        tables=(
            _t(
                "topology-lbs",
                "Load balancers",
                ("LB", "public", "inside", "reachable", "holds VIP", "daemons"),
                lbs,
            ),
            _t("topology-vips", "VIPs", ("VIP", "address", "held by", "verdict"), vips),
            _t(
                "topology-nodes",
                "Concentrators",
                (
                    "node",
                    "inside",
                    "internal",
                    "pool (inventory)",
                    "pool (charon)",
                    "state",
                    "why",
                    "release",
                ),
                nodes,
            ),
        ),
        alarm=any(n.state == "down" for n in r.nodes) or any(not lb.reachable for lb in r.lbs),
    )


def crypto(r: Report) -> Section:
    conns, clients, negotiated = [], [], []
    for p in r.policies:
        if not p.reachable:
            conns.append((p.node, "-", "-", "unreachable", "-", "-", "-"))
            continue
        for c in p.conns or ():
            conns.append(
                (
                    p.node,
                    c.name,
                    c.version,
                    c.local_auth,
                    c.remote_auth,
                    ", ".join(p.ike) or "-",
                    ", ".join(p.esp) or "-",
                )
            )
        if not p.conns:
            conns.append(
                (p.node, "none loaded", "-", "-", "-", ", ".join(p.ike) or "-", ", ".join(p.esp) or "-")
            )
        negotiated += [(p.node, algorithms, n) for algorithms, n in sorted(p.negotiated.items())]
    policy = r.inventory_policy
    clients += [("inventory", v.client, v.ike, v.esp) for v in policy.clients]
    for p in r.policies:
        if p.reachable and (p.ike, p.esp) != (policy.ike, policy.esp):
            clients += [(p.node, v.client, v.ike, v.esp) for v in p.clients]
            if p.problem:
                clients.append((p.node, "crypto policy", p.problem, ""))
    return Section(
        "crypto",
        "Crypto policy in force",
        "swanctl --list-conns on each node (version, authentication), the proposals in its swanctl files, "
        "the "
        "algorithms its live IKE SAs negotiated; client vocabulary from svpn.farm.proposals",
        tables=(
            _t(
                "crypto-nodes",
                "Per node",
                (
                    "node",
                    "connection",
                    "version",
                    "local auth",
                    "remote auth",
                    "IKE proposals",
                    "ESP proposals",
                ),
                conns,
            ),
            _t(
                "crypto-clients",
                "In each client's vocabulary (the inventory's proposals; a node listed only "
                "when its own differ)",
                ("from", "client", "IKE", "ESP"),
                clients,
            ),
            _t(
                "crypto-negotiated",
                "Negotiated by the live IKE SAs",
                ("node", "algorithms", "IKE SAs"),
                negotiated,
            ),
        ),
        alarm=any(p.problem for p in r.policies),
    )


UNKNOWN_SHOWN = 20  # live SAs of identities no certificate of the PKI carries (a load test's: thousands)


def _unknown_notes(unknown: tuple[str, ...]) -> list[str]:
    """A live IKE SA whose identity no user certificate carries, each up to UNKNOWN_SHOWN, then a count."""
    notes = [f"live IKE SA of an identity no user certificate carries: {s}" for s in unknown[:UNKNOWN_SHOWN]]
    if len(unknown) > UNKNOWN_SHOWN:
        notes.append(f"... and {len(unknown) - UNKNOWN_SHOWN:,} more such live IKE SAs (--json lists all)")
    return notes


def access(r: Report) -> Section:
    a = r.access
    departments = Counter(u.department or "(none)" for u in a.valid)
    chart = Chart(
        "chart-departments",
        "Valid certificates per department",
        tuple(Bar(d, n, None, f"{n:,}") for d, n in sorted(departments.items())),
    )
    user_rows = [(u.id, u.name, u.department, u.not_after) for u in a.valid]
    revoked = [(u.id, u.name, u.department, a.revoked_at.get(u.serial, "")) for u in a.revoked]
    notes = [
        f"{len(a.valid):,} valid, {len(a.revoked):,} revoked, {len(a.expiring):,} ending within {a.days} "
        "days, "
        f"{len(a.expired):,} ended",
        *([f"PKI not read: {a.why}"] if a.why else []),
        *_unknown_notes(a.unknown_sessions),
    ]
    return Section(
        "access",
        "Who holds access",
        "the controller's PKI index (svpn.helpdesk.directory.users_of: name, department, newest "
        "certificate); "
        "connected users from each node's live IKE SAs",
        tuple(notes),
        tables=(
            _t(
                "access-connected",
                "Connected now",
                ("user", "name", "department", "node", "identity", "algorithms"),
                [(c.user_id, c.name, c.department, c.node, c.identity, c.algorithms) for c in a.connected],
            ),
            _t("access-revoked", "Revoked", ("user", "name", "department", "revoked at"), revoked),
            _t(
                "access-expiring",
                f"Ending within {a.days} days",
                ("user", "name", "department", "ends"),
                [(u.id, u.name, u.department, u.not_after) for u in a.expiring],
            ),
            _t(
                "access-expired",
                "Ended (cannot connect)",
                ("user", "name", "department", "ended"),
                [(u.id, u.name, u.department, u.not_after) for u in a.expired],
            ),
            _t("access-valid", "Valid certificates", ("user", "name", "department", "ends"), user_rows),
        ),
        charts=(chart,) if departments else (),
        alarm=bool(a.why or a.unknown_sessions),
    )


def audit(r: Report) -> Section:
    a = r.audit
    if not a.available:
        verdict = f"audit trail not read: {a.problem}"
    elif a.ok:
        verdict = f"the hash chain of {len(a.entries):,} entries verifies"
    else:
        verdict = f"the hash chain is BROKEN at entry {a.first_bad}: {a.problem}"
    shown = list(a.entries)[-AUDIT_SHOWN:]
    rows = [
        (
            e.seq,
            e.time,
            e.operator,
            e.action,
            e.subject,
            e.reason,
            "BROKEN HERE" if e.seq == a.first_bad else "",
        )
        for e in shown
    ]
    more = (
        [f"the newest {AUDIT_SHOWN} of {len(a.entries):,} entries are listed"]
        if len(a.entries) > AUDIT_SHOWN
        else []
    )
    return Section(
        "audit",
        "PKI audit trail",
        f"{a.path or 'the PKI directory'}: every issue, renewal, revocation, CRL and bundle, chained by "
        "SHA-256 "
        "(svpn.access.pki.audit.verify_chain)",
        (verdict, *more),
        tables=(
            _t(
                "audit-entries",
                "Entries",
                ("seq", "time", "operator", "action", "subject", "reason", "chain"),
                rows,
            ),
        ),
        alarm=a.available and not a.ok,
    )


def capacity(r: Report) -> Section:
    c = r.capacity
    bars = tuple(
        Bar(
            row.node,
            float(row.sessions or 0),
            float(row.limit),
            "down" if row.sessions is None else f"{row.sessions:,} of {row.limit:,}",
        )
        for row in c.rows
    )
    rows = [
        (
            row.node,
            row.sessions,
            f"{row.limit:,}",
            "-" if row.percent is None else f"{row.percent:.1f} %",
            f"{row.pool_addresses:,}" if row.pool_addresses else "-",
            row.pool_online,
        )
        for row in c.rows
    ]
    return Section(
        "capacity",
        "Capacity against the plan",
        f"live: charon's IKE SAs per node (swanctl --stats); planned limit: {c.limit_source}; pool: the "
        "inventory's concentrator_pool",
        tables=(
            _t(
                "capacity-table",
                "Per node",
                (
                    "node",
                    "users (IKE SAs)",
                    "planned limit",
                    "of the limit",
                    "pool addresses",
                    "addresses leased",
                ),
                rows,
            ),
        ),
        charts=(Chart("chart-capacity", "Users per node against the planned limit", bars),),
        alarm=any(row.percent is not None and row.percent >= 100 for row in c.rows),
    )


def drift_section(r: Report) -> Section:
    rows = [(d.host, d.what, d.expected, d.found) for d in r.differences]
    files = [(c.host, c.path, c.state, c.checksum or "-") for c in r.checks]
    return Section(
        "drift",
        "Drift: the live farm against the inventory",
        "nodes and LB backends (the hosts' answers), pools (swanctl --list-pools against concentrator_pool), "
        "proposals in the swanctl files, config files (playbooks/drift.yml: each file's SHA-1 against the "
        "role's "
        "template rendered from the inventory), package versions (dpkg, between hosts of one release)",
        (f"{len(rows)} difference(s)" if rows else "no difference",),
        tables=(
            _t("drift-differences", "Differences", ("host", "what", "expected", "found"), rows),
            _t("drift-files", "Config files compared", ("host", "file", "state", "SHA-1 on the host"), files),
        ),
        alarm=bool(rows),
    )


def sections(r: Report) -> list[Section]:
    return [summary(r), topology(r), crypto(r), access(r), audit(r), capacity(r), drift_section(r)]
