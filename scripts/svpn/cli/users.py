"""`svpn users ...` and `svpn profiles ...`: staff access from the roster (logic in svpn.access.users)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from svpn.access import users as lib
from svpn.cli.options import audited, path_option, vault_options
from svpn.cli.pki import read_passphrase, resolve_dir, with_secret
from svpn.core.ansible_inventory import VaultOptions
from svpn.core.paths import repo_root

PROGRESS_FROM = 200  # tasks: below this a run is short enough to need no bar


class _Bar:
    def __init__(self, progress: Progress, task: Any) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int) -> None:
        self._progress.advance(self._task, n)


def progress_bar(description: str) -> Any:
    """A factory for :func:`svpn.access.users.sync`: a rich bar on stderr, only on a terminal and long
    runs."""

    @contextmanager
    def factory(total: int) -> Iterator[_Bar]:
        console = Console(stderr=True)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        with Progress(
            *columns,
            console=console,
            transient=True,
            disable=not console.is_terminal or total < PROGRESS_FROM,
        ) as progress:
            yield _Bar(progress, progress.add_task(description, total=total))

    return factory


def _inventory(path: Path | None) -> Path:
    return path if path is not None else repo_root() / "inventories" / "lab"


_inventory_option = path_option(
    "--inventory",
    kind="dir",
    help="Inventory with the farm settings in group_vars/all (default: inventories/lab); vault values need "
    "--vault-password-file or --vault-id.",
)
_bundles_option = path_option(
    "--bundles", kind="dir", help="Write a bundle per user into DIR/ID/ (0700; files 0600)."
)
_passwords_option = path_option(
    "--passwords",
    kind="file",
    help="CSV of bundle passwords for the helpdesk (default: passwords.csv beside the bundle directory).",
)
_workers_option = click.option(
    "--workers",
    type=click.IntRange(min=1, max=256),
    default=None,
    help="Worker processes (default: one per core).",
)
_legacy_option = click.option(
    "--legacy-p12",
    is_flag=True,
    help="PKCS#12 with 3DES and a SHA-1 MAC, for older Apple and Android versions.",
)


@click.group()
def users() -> None:
    """Staff VPN access from the roster: certificates, revocations and per-user bundles."""


@users.command("sync")
@path_option(
    "--roster",
    "roster_path",
    kind="file",
    help="Staff roster: CSV or YAML with id, name, email, department.",
    required=True,
)
@_bundles_option
@_passwords_option
@_inventory_option
@click.option(
    "--renew-within",
    type=click.IntRange(min=0, max=3650),
    default=30,
    show_default=True,
    metavar="DAYS",
    help="Renew certificates that expire within DAYS.",
)
@click.option(
    "--days", type=click.IntRange(min=1), default=730, show_default=True, help="Validity of new certificates."
)
@_legacy_option
@_workers_option
@click.option("--dry-run", is_flag=True, help="Print the diff; write nothing (no passphrase needed).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@vault_options
@with_secret
@audited
def sync_cmd(
    roster_path: Path,
    bundles: Path | None,
    passwords: Path | None,
    inventory: Path | None,
    renew_within: int,
    days: int,
    legacy_p12: bool,
    workers: int | None,
    dry_run: bool,
    as_json: bool,
    pki_dir: Path | None,
    passphrase_file: Path | None,
    vault: VaultOptions,
) -> None:
    """Issue, renew and revoke so the PKI matches the roster; build bundles with --bundles.

    Unchanged users are not touched: a second run with the same roster writes nothing.
    """
    opts = lib.SyncOptions(
        pki_dir=resolve_dir(pki_dir),
        roster=roster_path,
        inventory=_inventory(inventory),
        bundles=bundles,
        passwords=passwords,
        renew_within_days=renew_within,
        days=days,
        legacy_p12=legacy_p12,
        dry_run=dry_run,
        workers=workers,
        vault=vault,
    )
    result = lib.sync(opts, lambda: read_passphrase(passphrase_file), progress_bar("issuing"))
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        for line in result.lines():
            click.echo(line)
    revoked = [c.id for c in result.changes if c.action == "revoke"]
    if revoked and not dry_run:
        # The PKI changed, the farm did not: live sessions go on until the CRL reaches the nodes.
        click.echo(
            f"svpn: note: {len(revoked)} revoked; their live sessions end only when the CRL reaches the "
            "concentrators: ansible-playbook -i inventories/ENV playbooks/end-sessions.yml "
            f"-e users={','.join(revoked)} (playbooks/sync-users.yml does both in one run)",
            err=True,
        )


@users.command("bench")
@click.option(
    "--users",
    "count",
    type=click.IntRange(min=1, max=1_000_000),
    default=10_000,
    show_default=True,
    help="Synthetic users to issue with bundles.",
)
@click.option(
    "--sample",
    type=click.IntRange(min=1, max=10_000),
    default=50,
    show_default=True,
    help="Users issued by a loop of strongSwan's pki, to extrapolate from.",
)
@_inventory_option
@_legacy_option
@_workers_option
@path_option(
    "--work-dir",
    kind="dir",
    help="Where the throwaway PKI and bundles go (default: a temporary directory, removed after).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_cmd(
    count: int,
    sample: int,
    inventory: Path | None,
    legacy_p12: bool,
    workers: int | None,
    work_dir: Path | None,
    as_json: bool,
) -> None:
    """Time `users sync` for N users with bundles against a loop of strongSwan's `pki`."""
    from svpn.access import bench as bench_users

    result = bench_users.run(
        users=count,
        sample=sample,
        inventory=_inventory(inventory),
        legacy_p12=legacy_p12,
        workers=workers,
        work_dir=work_dir,
        progress_factory=progress_bar("bench"),
    )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        for line in result.table():
            click.echo(line)


@click.group()
def profiles() -> None:
    """Per-user VPN bundles: PKCS#12, client profiles and install guides."""


@profiles.command("build")
@click.argument("user_id", metavar="ID")
@path_option("--bundles", kind="dir", help="Bundle directory: the bundle goes to DIR/ID/.", required=True)
@_passwords_option
@_inventory_option
@_legacy_option
@vault_options
@with_secret
@audited
def build_cmd(
    user_id: str,
    bundles: Path,
    passwords: Path | None,
    inventory: Path | None,
    legacy_p12: bool,
    pki_dir: Path | None,
    passphrase_file: Path | None,
    vault: VaultOptions,
) -> None:
    """(Re)build the bundle of user ID from its current certificate, with a new password.

    Nothing is signed, but the user's key is sealed: the CA passphrase opens it.
    """
    folder, password_file = lib.build_one(
        resolve_dir(pki_dir),
        user_id,
        _inventory(inventory),
        bundles,
        passwords,
        legacy_p12,
        passphrase=lambda: read_passphrase(passphrase_file),
        vault=vault,
    )
    click.echo(f"built: {folder} (password in {password_file})")
