"""`svpn status`: the farm at a glance, and what is wrong with it. Pure: assembles the hosts' answers (read by
:mod:`svpn.helpdesk.status_hosts`) and the PKI's ends (:mod:`svpn.helpdesk.status_pki`) into one
:class:`FarmStatus`, whose problems make the command exit 1 (monitoring calls it) and whose notes do not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from svpn.farm.facts import DRAIN
from svpn.helpdesk.remote import HostResult
from svpn.helpdesk.status_hosts import (
    ROLE_REVOCATION,
    LbPair,
    LbStatus,
    NodeStatus,
    lb_pair,
    node_status,
    parse_lb,
)
from svpn.helpdesk.status_pki import PkiStatus

OK, PROBLEMS = 0, 1  # exit codes; svpn's errors (a bad inventory, no Ansible) exit 2
STALE_SECONDS = 15  # the LB checker rewrites its view every round (1 s): older means it is stuck or dead
POOL_FULL_PERCENT = 90  # a pool this full is about to refuse new users


@dataclass(frozen=True)
class FarmStatus:
    inventory: str
    checked_at: str  # ISO 8601, UTC
    nodes: tuple[NodeStatus, ...]
    lbs: tuple[LbStatus, ...]
    pair: LbPair
    pki: PkiStatus | None
    problems: tuple[str, ...]  # each makes `svpn status` exit 1
    notes: tuple[str, ...]  # worth knowing, not a failure (a node draining, users' certificates ending)

    @property
    def exit_code(self) -> int:
        return PROBLEMS if self.problems else OK


def farm_status(
    inventory: str,
    checked_at: str,
    concentrators: Mapping[str, HostResult | None],
    loadbalancers: Mapping[str, HostResult | None],
    pki: PkiStatus | None,
    pki_why: str = "",
) -> FarmStatus:
    """The farm's status from each host's answer (None: Ansible gave none), in the inventory's host order,
    and the PKI's part (None, with *pki_why*, when it could not be read)."""
    lbs, tables = [], {}
    for name, result in loadbalancers.items():
        lb, table = parse_lb(name, result)
        lbs.append(lb)
        tables[name] = table
    admin: dict[str, dict[str, str]] = {}
    for lb in lbs:
        for seen in lb.view:
            admin.setdefault(seen.node, {})[lb.name] = seen.admin
    nodes = [node_status(name, result, admin.get(name, {})) for name, result in concentrators.items()]
    pair = lb_pair(lbs, tables)
    problems = [
        *_node_problems(nodes, lbs),
        *_lb_problems(lbs, pair, nodes),
        *_pki_problems(pki, pki_why, nodes),
    ]
    if not concentrators:
        problems.append(f"{inventory}: the inventory has no host in group concentrators")
    notes = [*_drain_notes(nodes), *_pki_notes(pki)]
    return FarmStatus(
        inventory, checked_at, tuple(nodes), tuple(lbs), pair, pki, tuple(problems), tuple(notes)
    )


def _lb_views(node: str, lbs: Sequence[LbStatus]) -> str:
    """What the LBs make of a node that is down: they still send it users, or they moved them away."""
    sending = [
        lb.name for lb in lbs for seen in lb.view if seen.node == node and seen.up and seen.admin != DRAIN
    ]
    if sending:
        return f"; {', '.join(sending)} still count it up and send it new users (IKE answers)"
    away = [lb.name for lb in lbs for seen in lb.view if seen.node == node and not seen.up]
    return f"; {', '.join(away)} see it down too and send its users to the others" if away else ""


def _node_problems(nodes: Sequence[NodeStatus], lbs: Sequence[LbStatus]) -> list[str]:
    problems = []
    for node in nodes:
        if node.state == "down":
            problems.append(f"{node.name} is down: {node.why}{_lb_views(node.name, lbs)}")
        for pool in node.pools:
            if pool.percent >= POOL_FULL_PERCENT:
                problems.append(
                    f"{node.name}: pool {pool.name} is {pool.percent:.0f}% used "
                    f"({pool.online} of {pool.size}): it refuses new users once full"
                )
    return problems


def _lb_problems(lbs: Sequence[LbStatus], pair: LbPair, nodes: Sequence[NodeStatus]) -> list[str]:
    down = {n.name for n in nodes if n.state == "down"}  # told with the node
    problems = []
    for lb in lbs:
        if not lb.reachable:
            problems.append(f"{lb.name} is down: {lb.why}")
            continue
        problems += [f"{lb.name}: {d.name} is {d.state}" for d in lb.daemons if d.state != "active"]
        if lb.why:
            problems.append(f"{lb.name}: {lb.why}")
        elif lb.view_age is not None and lb.view_age > STALE_SECONDS:
            problems.append(
                f"{lb.name}: the health checker's view is {lb.view_age:.0f} s old (svpn-lb-health is stuck "
                "or stopped: the bucket table no longer follows the nodes)"
            )
        for seen in lb.view:
            if not seen.up and seen.admin != DRAIN and seen.node not in down:
                problems.append(f"{lb.name} sees {seen.node} down since {seen.since}: {seen.reason}")
    if not lbs:
        return problems
    unreachable = [lb.name for lb in lbs if not lb.reachable]
    for vip in pair.vips:
        if vip.verdict == "none":
            maybe = f" (unreachable, may hold it: {', '.join(unreachable)})" if unreachable else ""
            problems.append(f"no LB holds the {vip.vip} VIP {vip.address}{maybe}")
        elif vip.verdict != "ok":
            problems.append(
                f"split brain: {' and '.join(vip.holders)} each hold the {vip.vip} VIP {vip.address} "
                "(keepalived's VRRP between them is broken)"
            )
    problems += list(pair.differences)
    return problems


def _fail_closed(nodes: Sequence[NodeStatus]) -> list[str]:
    return [n.name for n in nodes if n.reachable and n.revocation == ROLE_REVOCATION]


def _pki_problems(pki: PkiStatus | None, why: str, nodes: Sequence[NodeStatus]) -> list[str]:
    if pki is None:
        return [f"certificates not checked: {why}"] if why else []
    problems = []
    for item in pki.certificates:
        if not item.soon:
            continue
        problem = item.message
        if item.kind == "crl":
            closed = _fail_closed(nodes)
            if closed:
                problem += (
                    f"; nodes with revocation {ROLE_REVOCATION} ({', '.join(closed)}) refuse EVERY user once "
                    "the CRL they hold is past its nextUpdate"
                )
        problems.append(problem)
    return problems


def _drain_notes(nodes: Sequence[NodeStatus]) -> list[str]:
    notes = []
    for node in nodes:
        if node.state == "draining":
            notes.append(f"{node.name} drains (no new users): {node.why}")
        if node.drain_table and not node.drained_on:
            notes.append(
                f"{node.name} refuses new IKE SAs but no LB has it in admin state drain: a drain left half "
                f"done? (playbooks/drain.yml -e node={node.name} again, or with -e drain_state=active to end "
                "it)"
            )
    return notes


def _pki_notes(pki: PkiStatus | None) -> list[str]:
    if pki is None:
        return []
    notes = []
    if pki.users_expiring:
        first = ", ".join(f"{u.id} ({u.not_after[:10]})" for u in pki.first_expiring)
        more = "" if pki.users_expiring <= len(pki.first_expiring) else ", ..."
        notes.append(
            f"{pki.users_expiring} user certificate(s) end within {pki.days} days: {first}{more} "
            "(`svpn users sync` renews the ones within its --renew-within days)"
        )
    if pki.users_expired:
        notes.append(f"{pki.users_expired} user(s) hold only an ended certificate and cannot connect")
    return notes
