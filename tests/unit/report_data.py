"""Captured lab output and a Report built from it, for the report's unit tests (pure and browser)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

from svpn.helpdesk.answers import User
from svpn.helpdesk.remote import HostResult
from svpn.report.model import Audit, Inputs, Report, build_report
from svpn.report.playbook import file_checks

DATA = Path(__file__).parent / "data" / "report"
NOW = dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC)
IKE = ["aes256gcm16-prfsha384-ecp384", "aes256gcm16-prfsha256-curve25519", "aes128gcm16-prfsha256-ecp256"]
ESP = ["aes256gcm16-ecp384", "aes256gcm16-curve25519", "aes128gcm16-ecp256"]
POOLS = {"conc1": "198.19.0.0/20", "conc2": "198.19.16.0/20", "conc3": "198.19.32.0/20"}


@dataclasses.dataclass(frozen=True)
class Entry:
    """An audit entry as svpn.access.pki.audit.AuditEntry has it (the fields the report shows)."""

    seq: int
    time: str
    operator: str
    action: str
    subject: str
    reason: str = ""


ENTRIES = (
    Entry(1, "2026-11-30T10:00:00Z", "root", "issue", "alice"),
    Entry(2, "2026-11-30T12:00:00Z", "root", "revoke", "frank", "left"),
)


def host_results() -> dict[str, HostResult]:
    raw = json.loads((DATA / "lab-hosts.json").read_text())
    return {h: HostResult(h, r["rc"], r["stdout"], r["stderr"]) for h, r in raw.items()}


def users() -> list[User]:
    def user(uid: str, status: str, department: str, ends: str) -> User:
        serial = f"0a{uid.encode().hex()}"
        return User(
            uid,
            f"Lab user {uid}",
            f"{uid}@svpn.test",
            department,
            serial,
            ends,
            status,
            (f"CN={uid}", f"{uid}@svpn.test"),
        )

    return [
        user("alice", "valid", "Lab", "2028-11-29T10:58:59Z"),
        user("dave", "valid", "Roads", "2026-12-10T00:00:00Z"),  # ends within 30 days of NOW
        user("frank", "revoked", "Lab", "2028-11-29T10:58:59Z"),
        user("gina", "expired", "Roads", "2026-11-01T00:00:00Z"),
    ]


def inputs(**change: Any) -> Inputs:
    results = host_results()
    checks, failed = file_checks(json.loads((DATA / "drift-play.json").read_text()))
    found = users()
    frank = next(u for u in found if u.id == "frank")
    base = Inputs(
        inventory="inventories/lab",
        now=NOW,
        concentrators={h: results[h] for h in ("conc1", "conc2", "conc3")},
        loadbalancers={h: results[h] for h in ("lb1", "lb2")},
        hostvars={
            h: {"concentrator_pool": p, "svpn_addresses": {"inside": "198.18.3.1"}} for h, p in POOLS.items()
        },
        all_vars={"svpn_ike_proposals": IKE, "svpn_esp_proposals": ESP},
        pki=None,
        pki_why="",
        users=tuple(found),
        records=({"serial": frank.serial, "revoked_at": "2026-11-30T12:00:00Z"},),
        audit=Audit(
            True,
            "pki/audit.jsonl",
            (
                Entry(1, "2026-11-30T10:00:00Z", "root", "issue", "alice"),
                Entry(2, "2026-11-30T12:00:00Z", "root", "revoke", "frank", "left"),
            ),
            True,
            None,
            "",
        ),
        checks=tuple(checks),
        play_failed=failed,
        play_why="",
        days=30,
        limit=5000,
        limit_source="the planner's default",
    )
    return dataclasses.replace(base, **change)


def report(**change: Any) -> Report:
    return build_report(inputs(**change))
