"""`svpn status`: the farm at a glance for the helpdesk and for monitoring (logic in svpn.helpdesk.status*).

Exit status: 0 all is well, 1 something is down, split or ends soon (listed), 2 the status could not be taken
(svpn's errors: a bad inventory, no Ansible).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from svpn.access.pki.expiry import WARN_DAYS
from svpn.cli.options import farm_inventory_option, farm_pki_option, vault_options
from svpn.core.ansible_inventory import VaultOptions
from svpn.core.errors import SvpnError
from svpn.core.paths import repo_root
from svpn.helpdesk.answers import to_json
from svpn.helpdesk.status import PROBLEMS, FarmStatus
from svpn.helpdesk.status_hosts import LbStatus, NodeStatus
from svpn.helpdesk.status_pki import PkiStatus

WIDTH = 140  # the tables' width when stdout is not a terminal (a log, a monitoring system's mail)
STATE_STYLE = {"active": "green", "draining": "yellow", "down": "bold red"}


class ProblemsFound(SvpnError):
    """`svpn status` found something wrong (listed above this line)."""

    exit_code = PROBLEMS


@click.command("status")
@farm_inventory_option
@farm_pki_option()
@click.option(
    "--days",
    type=click.IntRange(min=0),
    default=WARN_DAYS,
    show_default=True,
    help="Report certificates (CA, servers, users) that end within DAYS.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (one JSON object).")
@vault_options
def status(inventory: Path | None, pki: Path | None, days: int, as_json: bool, vault: VaultOptions) -> None:
    """The farm at a glance: each concentrator's users, pool use and state, the LB pair's VIPs, health and
    bucket owners, certificates and the CRL close to their end.

    Exit status: 0 all is well; 1 something is down, split or ends soon (each listed); 2 the status could not
    be taken. Hosts are read through Ansible's connections, two runs at once.
    """
    from svpn.helpdesk.status_read import read_status

    farm = read_status(
        inventory if inventory is not None else repo_root() / "inventories" / "lab",
        pki,
        days,
        vault,
        in_process=True,
    )
    if as_json:
        click.echo(json.dumps({**to_json(farm), "exit_code": farm.exit_code}, indent=2, ensure_ascii=False))
    else:
        console = Console(
            width=None if Console().is_terminal else max(WIDTH, shutil.get_terminal_size().columns)
        )
        render(console, farm)
    if farm.problems:
        raise ProblemsFound(f"{len(farm.problems)} problem(s) in {farm.inventory}")


def render(console: Console, farm: FarmStatus) -> None:
    """The status as tables and lines, for people."""
    console.print(f"[bold]Farm {farm.inventory}[/] at {farm.checked_at}")
    console.print(_nodes_table(farm.nodes))
    if farm.lbs:
        console.print(_lbs_table(farm.lbs))
        _print_pair(console, farm)
    if farm.pki is not None:
        console.print(_pki_table(farm.pki))
    # one line each, never wrapped: a log or a monitoring mail keeps them whole
    for note in farm.notes:
        console.print(Text(f"note: {note}", style="yellow"), soft_wrap=True)
    if farm.problems:
        console.print(Text(f"{len(farm.problems)} problem(s):", style="bold red"))
        for problem in farm.problems:
            console.print(Text(f"  - {problem}", style="red"), soft_wrap=True)
    else:
        console.print(Text("all is well", style="bold green"))


def _nodes_table(nodes: tuple[NodeStatus, ...]) -> Table:
    table = Table(title="Concentrators", title_justify="left")
    for column in ("node", "state", "users", "half-open", "pool use", "charon since", "why"):
        table.add_column(column, justify="right" if column in ("users", "half-open") else "left")
    for node in nodes:
        pools = ", ".join(f"{p.online}/{p.size} ({p.percent:.0f}%)" for p in node.pools)
        table.add_row(
            node.name,
            Text(node.state, style=STATE_STYLE.get(node.state, "")),
            "-" if node.users is None else str(node.users),
            "-" if node.half_open is None else str(node.half_open),
            pools or "-",
            node.charon_since or "-",
            node.why,
        )
    return table


def _lbs_table(lbs: tuple[LbStatus, ...]) -> Table:
    table = Table(title="Load balancers", title_justify="left")
    for column in ("LB", "VIPs held", "daemons", "health view (nodes)", "view age"):
        table.add_column(column)
    for lb in lbs:
        if not lb.reachable:
            table.add_row(lb.name, Text("down", style="bold red"), "", Text(lb.why, style="red"), "")
            continue
        held = [v for v, holds in (("public", lb.holds_public_vip), ("inside", lb.holds_inside_vip)) if holds]
        daemons = Text(
            ", ".join(d.name if d.state == "active" else f"{d.name} {d.state}" for d in lb.daemons)
        )
        if any(d.state != "active" for d in lb.daemons):
            daemons.stylize("red")
        view = ", ".join(
            f"{seen.node} {'up' if seen.up else 'DOWN'}{'' if seen.admin == 'active' else f' ({seen.admin})'}"
            for seen in lb.view
        )
        age = "-" if lb.view_age is None else f"{lb.view_age:.0f} s"
        table.add_row(lb.name, ", ".join(held) or "-", daemons, view or Text(lb.why, style="red"), age)
    return table


def _print_pair(console: Console, farm: FarmStatus) -> None:
    for vip in farm.pair.vips:
        holders = ", ".join(vip.holders) or "no LB"
        style = "" if vip.verdict == "ok" else "bold red"
        verdict = "" if vip.verdict == "ok" else f" - {vip.verdict.upper()}"
        console.print(Text(f"{vip.vip} VIP {vip.address}: held by {holders}{verdict}", style=style))
    if farm.pair.table_from:
        counts = ", ".join(f"{c.node} {c.buckets}" for c in farm.pair.buckets)
        console.print(f"bucket owners ({farm.pair.table_from}'s table): {counts}")
    for difference in farm.pair.differences:
        console.print(Text(difference, style="red"))


def _pki_table(pki: PkiStatus) -> Table:
    table = Table(title=f"Certificates ({pki.directory})", title_justify="left")
    for column in ("what", "name", "ends", "left"):
        table.add_column(column)
    for item in pki.certificates:
        left = "-" if item.days_left is None else f"{item.days_left} days"
        what = "CRL nextUpdate" if item.kind == "crl" else item.kind
        style = "red" if item.soon else ""
        table.add_row(what, item.name, item.not_after or "missing", Text(left, style=style))
    expiring = f"{pki.users_expiring} within {pki.days} days"
    if pki.first_expiring:
        expiring += ": first " + ", ".join(u.id for u in pki.first_expiring)
    table.add_row("users", "", expiring, f"{pki.users_expired} ended")
    return table
