"""`svpn report`'s I/O: every concentrator and LB asked in one Ansible round trip
(:func:`svpn.helpdesk.remote.run_here`, as `svpn status` does), the drift play run meanwhile in a child
process (:mod:`svpn.report.playbook`), the inventory, the PKI's index and audit trail read here; then
:func:`svpn.report.model.build_report`. Read-only everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from svpn.access.pki import audit, clock
from svpn.access.pki.cert_index import Index
from svpn.core.ansible_inventory import ANSIBLE_WAY, VaultOptions, read_inventory
from svpn.core.errors import SvpnError
from svpn.helpdesk import remote
from svpn.helpdesk.directory import users_of
from svpn.helpdesk.status_hosts import FARM_PATTERN, per_host
from svpn.helpdesk.status_read import CONNECT_SECONDS, pki_dir_of, read_pki
from svpn.planning.defaults import DEFAULT_LIMIT_SOURCES, DEFAULT_LIMITS
from svpn.report import hosts, playbook
from svpn.report.model import Audit, Inputs, Report, build_report

Step = Callable[[str], None]  # told each step's name as it starts


def read_audit(pki_dir: Path | None, why: str = "", head: dict[str, Any] | None = None) -> Audit:
    """The PKI's audit trail and whether its hash chain verifies (svpn.access.pki.audit), the chain checked
    against *head*, the newest entry index.json records (a log cut short after it is found too)."""
    if pki_dir is None:
        return Audit(False, "", (), False, None, why or "no PKI directory")
    path = audit.audit_path(pki_dir)
    entries, check = audit.read_log(path, head)
    if entries is None:
        return Audit(True, str(path), (), False, check.first_bad, check.problem)
    return Audit(True, str(path), tuple(entries), check.ok, check.first_bad, check.problem)


def planned_limit(all_vars: dict[str, Any]) -> tuple[int, str]:
    """The per-node IKE SA limit the plan used (svpn_plan in group_vars/all), else the planner's default."""
    plan = all_vars.get("svpn_plan")
    if isinstance(plan, dict) and isinstance(plan.get("ike_sas_per_node"), int):
        return plan["ike_sas_per_node"], "svpn_plan.ike_sas_per_node in the inventory's group_vars/all"
    default = int(DEFAULT_LIMITS["ike_sas_per_node"])
    why = DEFAULT_LIMIT_SOURCES["ike_sas_per_node"]
    return default, f"the planner's default (the inventory has no svpn_plan): {why}"


def _play(inventory: Path, vault: VaultOptions) -> tuple[list[Any], dict[str, str], str, float]:
    started = time.monotonic()
    try:
        checks, failed = playbook.run_drift_play(inventory, vault)
    except SvpnError as err:
        return [], {}, str(err), time.monotonic() - started
    return checks, failed, "", time.monotonic() - started


def read_report(
    inventory: Path,
    pki: Path | None = None,
    days: int = 30,
    vault: VaultOptions = ANSIBLE_WAY,
    step: Step = lambda _: None,
    with_drift_play: bool = True,
) -> Report:
    if not inventory.is_dir():
        raise SvpnError(f"--inventory: {inventory} is not a directory; give the farm's inventory directory")
    now = clock.now()
    timings: dict[str, float] = {}
    with ThreadPoolExecutor(max_workers=1) as pool:
        play = pool.submit(_play, inventory, vault) if with_drift_play else None
        started = time.monotonic()
        step("inventory")
        read = read_inventory(inventory, vault)
        step("hosts")
        try:
            answers: dict[str, remote.HostResult] | str = remote.run_here(
                inventory,
                FARM_PATTERN,
                hosts.FARM_REPORT_COMMAND,
                vault=vault,
                extra_vars={"ansible_ssh_timeout": CONNECT_SECONDS},
                prepared=read.ansible,
            )
        except SvpnError as err:
            answers = str(err)
        timings["hosts"] = time.monotonic() - started
        step("certificates")
        started = time.monotonic()
        pki_dir, pki_status, pki_why, users, records, head = None, None, "", [], [], {}
        try:
            pki_dir = pki if pki is not None else pki_dir_of(inventory, read)
            index = Index.load(pki_dir)  # read once: the access section, the PKI's status, the audit head
            records, head = index.certs, index.audit_head
            users = users_of(records, now)
            pki_status = read_pki(pki_dir, now, days, users=users)
        except SvpnError as err:
            pki_why = str(err)
        step("audit trail")
        audit = read_audit(pki_dir, pki_why, head)
        timings["pki"] = time.monotonic() - started
        step("drift play")
        checks, failed, play_why, play_seconds = (
            play.result() if play is not None else ([], {}, "not run (--no-play)", 0.0)
        )
        timings["drift play"] = play_seconds
    step("building")
    names = {g: read.groups.get(g, []) for g in ("concentrators", "loadbalancers")}
    limit, source = planned_limit(read.all_vars)
    report = build_report(
        Inputs(
            inventory=str(inventory),
            now=now,
            concentrators=per_host(names["concentrators"], answers),
            loadbalancers=per_host(names["loadbalancers"], answers),
            hostvars=read.hostvars,
            all_vars=read.all_vars,
            pki=pki_status,
            pki_why=pki_why,
            users=tuple(users),
            records=tuple(records),
            audit=audit,
            checks=tuple(checks),
            play_failed=failed,
            play_why=play_why,
            days=days,
            limit=limit,
            limit_source=source,
        )
    )
    report.timings.update(timings)
    return report
