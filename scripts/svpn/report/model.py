"""The report's content, section by section, built from what was read (:func:`build_report`). Pure: the
hosts' answers, the inventory's variables, the PKI's users and the audit trail come in as data, so every
section is tested from captured output.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from svpn.access.pki import clock
from svpn.farm.identities import identity_key
from svpn.helpdesk.answers import User
from svpn.helpdesk.remote import HostResult
from svpn.helpdesk.status import FarmStatus, farm_status
from svpn.helpdesk.status_hosts import LbStatus, NodeStatus, VipHolders, parts
from svpn.helpdesk.status_pki import PkiStatus
from svpn.report import drift, hosts
from svpn.report.crypto import NodePolicy, node_policy

OK, FOUND = 0, 1  # exit codes: 1 when drift or an unreachable host was found; svpn's errors exit 2


@dataclass(frozen=True)
class HostFacts:
    """What a reachable host said beyond `svpn status`'s parts."""

    release: str
    packages: dict[str, str]


@dataclass(frozen=True)
class CapacityRow:
    node: str
    sessions: int | None  # established IKE SAs; None when the node did not answer
    limit: int  # planned IKE SAs per node
    pool_addresses: int  # the planned pool's client addresses (0: none planned)
    pool_online: int | None

    @property
    def percent(self) -> float | None:
        return None if self.sessions is None else 100.0 * self.sessions / self.limit if self.limit else None


@dataclass(frozen=True)
class Capacity:
    limit_source: str  # where the per-node limit comes from
    rows: tuple[CapacityRow, ...]


@dataclass(frozen=True)
class Connected:
    user_id: str
    name: str
    department: str
    node: str
    identity: str
    algorithms: str


@dataclass(frozen=True)
class Access:
    valid: tuple[User, ...]
    revoked: tuple[User, ...]
    expiring: tuple[User, ...]  # valid, ending within the window
    expired: tuple[User, ...]
    connected: tuple[Connected, ...]
    unknown_sessions: tuple[str, ...]  # "node: identity" of live SAs no user certificate carries
    days: int
    revoked_at: dict[str, str] = field(default_factory=dict)  # serial -> ISO time
    why: str = ""  # why the PKI could not be read ("" when it was)


@dataclass(frozen=True)
class Audit:
    available: bool
    path: str
    entries: tuple[Any, ...]  # svpn.access.pki.audit.AuditEntry
    ok: bool
    first_bad: int | None
    problem: str


@dataclass(frozen=True)
class Report:
    inventory: str
    generated_at: str
    farm: FarmStatus
    facts: dict[str, HostFacts]
    policies: tuple[NodePolicy, ...]
    inventory_policy: NodePolicy
    planned: dict[str, dict[str, str]]  # host -> inventory addresses/pool
    access: Access
    audit: Audit
    capacity: Capacity
    checks: tuple[drift.FileCheck, ...]
    differences: tuple[drift.Difference, ...]
    unreachable: tuple[str, ...]  # "host: why"
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return FOUND if self.differences or self.unreachable or not self.audit.ok else OK

    @property
    def nodes(self) -> tuple[NodeStatus, ...]:
        return self.farm.nodes

    @property
    def lbs(self) -> tuple[LbStatus, ...]:
        return self.farm.lbs

    @property
    def vips(self) -> tuple[VipHolders, ...]:
        return self.farm.pair.vips


def access_of(
    users: Sequence[User],
    records: Sequence[Mapping[str, Any]],
    live: Mapping[str, Sequence[hosts.LiveSa]],
    now: dt.datetime,
    days: int,
) -> Access:
    """Who holds access: valid, revoked, expiring within *days*, ended, and who is connected now (a live
    IKE SA whose identity one of the user's certificates carries)."""
    horizon = now + dt.timedelta(days=days)
    ordered = sorted(users, key=lambda u: u.id)
    valid = tuple(u for u in ordered if u.status == "valid")
    owners = {identity_key(i): u for u in users for i in u.identities}
    connected, unknown = [], []
    for node, sas in live.items():
        for sa in sas:
            if sa.state != "ESTABLISHED":
                continue
            user = owners.get(identity_key(sa.identity))
            if user is None:
                unknown.append(f"{node}: {sa.identity}")
                continue
            connected.append(Connected(user.id, user.name, user.department, node, sa.identity, sa.algorithms))
    return Access(
        valid=valid,
        revoked=tuple(u for u in ordered if u.status == "revoked"),
        expiring=tuple(
            sorted((u for u in valid if clock.parse_iso(u.not_after) <= horizon), key=lambda u: u.not_after)
        ),
        expired=tuple(u for u in ordered if u.status == "expired"),
        connected=tuple(sorted(connected, key=lambda c: (c.user_id, c.node))),
        unknown_sessions=tuple(sorted(unknown)),
        days=days,
        revoked_at={str(r["serial"]): str(r.get("revoked_at") or "") for r in records if r.get("revoked_at")},
    )


def capacity_of(
    nodes: Sequence[NodeStatus], planned_pools: Mapping[str, int], limit: int, source: str
) -> Capacity:
    rows = []
    for node in nodes:
        online = sum(p.online for p in node.pools) if node.pools else None
        rows.append(CapacityRow(node.name, node.users, limit, planned_pools.get(node.name, 0), online))
    return Capacity(source, tuple(rows))


@dataclass(frozen=True)
class Inputs:
    """Everything read, as data."""

    inventory: str
    now: dt.datetime
    concentrators: dict[str, HostResult | None]
    loadbalancers: dict[str, HostResult | None]
    hostvars: dict[str, dict[str, Any]]
    all_vars: dict[str, Any]
    pki: PkiStatus | None
    pki_why: str
    users: tuple[User, ...]
    records: tuple[dict[str, Any], ...]
    audit: Audit
    checks: tuple[drift.FileCheck, ...]
    play_failed: dict[str, str]  # host -> why the drift play could not compare its files
    play_why: str  # why the drift play did not run at all ("" when it did)
    days: int
    limit: int
    limit_source: str


def _facts(results: Mapping[str, HostResult | None]) -> dict[str, HostFacts]:
    facts = {}
    for host, result in results.items():
        if result is None or not result.ok:
            continue
        found = parts(result.stdout)
        facts[host] = HostFacts(
            hosts.parse_release(found.get("release")), hosts.parse_packages(found.get("packages"))
        )
    return facts


def _planned(hostvars: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> dict[str, dict[str, str]]:
    planned = {}
    for name in names:
        variables = hostvars.get(name, {})
        addresses = variables.get("svpn_addresses") or {}
        row = {k: str(v) for k, v in addresses.items()} if isinstance(addresses, Mapping) else {}
        if variables.get("concentrator_pool"):
            row["pool"] = str(variables["concentrator_pool"])
        planned[name] = row
    return planned


def _pool_size(cidr: str) -> int:
    import ipaddress

    try:
        n = ipaddress.ip_network(cidr, strict=False).num_addresses
    except ValueError:
        return 0
    return n - 2 if n > 2 else n


def build_report(inp: Inputs) -> Report:
    """The report from everything read."""
    farm = farm_status(
        inp.inventory, clock.iso(inp.now), inp.concentrators, inp.loadbalancers, inp.pki, inp.pki_why
    )
    everything = {**inp.concentrators, **inp.loadbalancers}
    facts = _facts(everything)
    planned = _planned(inp.hostvars, list(everything))
    ike = [str(p) for p in inp.all_vars.get("svpn_ike_proposals") or []]
    esp = [str(p) for p in inp.all_vars.get("svpn_esp_proposals") or []]
    pfs_optional = bool(inp.all_vars.get("svpn_esp_pfs_optional", False))
    policies, live, differences = [], {}, []
    differences += drift.node_differences(farm.nodes, farm.lbs, list(inp.concentrators))
    for node in farm.nodes:
        result = inp.concentrators.get(node.name)
        found = parts(result.stdout) if result is not None and result.ok else {}
        files = hosts.parse_proposals(found.get("proposals"))
        conns = hosts.parse_conn_policies(found["conns"].text) if "conns" in found else []
        live[node.name] = hosts.parse_sas(found.get("identities"))
        policies.append(node_policy(node.name, node.reachable, conns, files, live[node.name], pfs_optional))
        differences += drift.pool_differences(node, planned.get(node.name, {}).get("pool", ""))
        differences += drift.proposal_differences(node.name, files, ike, esp)
    checks = inp.checks
    differences += drift.file_differences(checks)
    differences += [
        drift.Difference(h, "config files", "compared with what the roles write", f"not compared: {why}")
        for h, why in sorted(inp.play_failed.items())
        if h in facts  # an unreachable host is reported as such once
    ]
    if inp.play_why:
        differences.append(
            drift.Difference("controller", "config files", "compared by the drift play", inp.play_why)
        )
    for group in (inp.concentrators, inp.loadbalancers):
        differences += drift.package_differences(
            {h: facts[h].packages for h in group if h in facts},
            {h: facts[h].release for h in group if h in facts},
        )
    unreachable = tuple(f"{n.name}: {n.why}" for n in farm.nodes if not n.reachable) + tuple(
        f"{lb.name}: {lb.why}" for lb in farm.lbs if not lb.reachable
    )
    access = access_of(inp.users, inp.records, live, inp.now, inp.days)
    if inp.pki_why:
        access = Access((), (), (), (), access.connected, access.unknown_sessions, inp.days, {}, inp.pki_why)
    pools = {n: _pool_size(v.get("pool", "")) for n, v in planned.items() if v.get("pool")}
    return Report(
        inventory=inp.inventory,
        generated_at=clock.iso(inp.now),
        farm=farm,
        facts=facts,
        policies=tuple(policies),
        inventory_policy=node_policy(
            "inventory",
            True,
            [],
            [hosts.FileProposals("group_vars", tuple(ike), tuple(esp))],
            [],
            pfs_optional,
        ),
        planned=planned,
        access=access,
        audit=inp.audit,
        capacity=capacity_of(farm.nodes, pools, inp.limit, inp.limit_source),
        checks=tuple(checks),
        differences=tuple(differences),
        unreachable=unreachable,
    )


def negotiated(policy: NodePolicy) -> list[tuple[str, int]]:
    return Counter(policy.negotiated).most_common()
