"""`svpn report`: the farm for an auditor, as one self-contained HTML page and its Markdown twin (logic in
svpn.report).

Exit status: 0 no drift, every host answered and the audit chain verifies; 1 drift, an unreachable host or a
broken audit chain (the report is still written, each finding named in it); 2 the report could not be made
(svpn's errors: a bad inventory, no Ansible).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from svpn.cli.options import farm_inventory_option, farm_pki_option, path_option, vault_options
from svpn.core.ansible_inventory import VaultOptions
from svpn.core.errors import SvpnError
from svpn.core.paths import repo_root

if TYPE_CHECKING:
    from svpn.report.model import Report

EXPIRING_DAYS = 30
STEPS = ("inventory", "hosts", "certificates", "audit trail", "drift play", "building", "writing")


class FindingsReported(SvpnError):
    """`svpn report` found drift, an unreachable host or a broken audit chain (named in the report)."""

    exit_code = 1


@click.command("report")
@farm_inventory_option
@path_option(
    "--out", kind="dir", required=True, help="Where report.html and report.md are written (made if absent)."
)
@farm_pki_option()
@click.option(
    "--days",
    type=click.IntRange(min=0),
    default=EXPIRING_DAYS,
    show_default=True,
    help="List user certificates that end within DAYS.",
)
@click.option("--json", "as_json", is_flag=True, help="Also print the report's findings as one JSON object.")
@click.option(
    "--no-drift-play",
    is_flag=True,
    help="Skip playbooks/drift.yml (config files are then not compared; everything else is reported).",
)
@vault_options
def report(
    inventory: Path | None,
    out: Path,
    pki: Path | None,
    days: int,
    as_json: bool,
    no_drift_play: bool,
    vault: VaultOptions,
) -> None:
    """Write OUT/report.html (one self-contained page: inline CSS and SVG charts) and OUT/report.md: topology,
    the crypto policy each node has loaded, who holds valid, revoked and soon-ending certificates, the PKI's
    audit trail and whether its hash chain verifies, capacity against the plan, and drift from the inventory
    (nodes, pools, proposals, config files, package versions).

    Read-only on every host: one Ansible round trip for all hosts, and playbooks/drift.yml (checksums against
    the roles' templates rendered here) at the same time. Exit status: 0 nothing found; 1 drift, an
    unreachable host or a broken audit chain (the report is still written); 2 the report could not be made.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from svpn.core.files import atomic_write
    from svpn.report.html import render_html
    from svpn.report.markdown import render_markdown
    from svpn.report.read import read_report

    if out.exists() and not out.is_dir():
        raise SvpnError(f"--out: {out} is not a directory")
    started = time.monotonic()
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), transient=True, disable=as_json
    )
    with progress:
        task = progress.add_task("reading", total=len(STEPS))

        def step(name: str) -> None:
            progress.update(task, description=name, completed=STEPS.index(name))

        farm = read_report(
            inventory if inventory is not None else repo_root() / "inventories" / "lab",
            pki,
            days,
            vault,
            step=step,
            with_drift_play=not no_drift_play,
        )
        step("writing")
        out.mkdir(parents=True, exist_ok=True)
        farm.timings["total"] = time.monotonic() - started
        atomic_write(out / "report.html", render_html(farm))
        atomic_write(out / "report.md", render_markdown(farm))
    if as_json:
        click.echo(json.dumps(_document(farm, out), ensure_ascii=False))
    else:
        _tell(farm, out)
    if farm.exit_code:
        raise FindingsReported(
            f"{len(farm.differences)} difference(s), {len(farm.unreachable)} unreachable host(s), audit "
            f"chain {'verifies' if farm.audit.ok else 'broken'}: see {out / 'report.html'}"
        )


def _document(farm: Report, out: Path) -> dict[str, Any]:
    from svpn.helpdesk.answers import to_json
    from svpn.report.sections import sections

    return {
        "exit_code": farm.exit_code,
        "html": str(out / "report.html"),
        "markdown": str(out / "report.md"),
        "differences": to_json(list(farm.differences)),
        "unreachable": list(farm.unreachable),
        "audit": {
            "ok": farm.audit.ok,
            "entries": len(farm.audit.entries),
            "first_bad": farm.audit.first_bad,
            "problem": farm.audit.problem,
        },
        "timings": farm.timings,
        "sections": to_json(sections(farm)),
    }


def _tell(farm: Report, out: Path) -> None:
    click.echo(f"wrote {out / 'report.html'} and {out / 'report.md'} in {farm.timings['total']:.1f} s")
    for d in farm.differences:
        click.echo(f"drift: {d.host}: {d.what}: expected {d.expected}; found {d.found}")
    if farm.audit.available and not farm.audit.ok:
        click.echo(f"audit: the hash chain is broken at entry {farm.audit.first_bad}: {farm.audit.problem}")
