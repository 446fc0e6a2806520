"""`svpn whereis QUERY` and `svpn explain QUERY`: where a user is connected, and why their attempts failed,
for a helpdesk agent with a caller on the line (logic in svpn.helpdesk.service)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from svpn.cli.options import farm_inventory_option, farm_pki_option, vault_options
from svpn.core.ansible_inventory import VaultOptions
from svpn.core.paths import repo_root
from svpn.helpdesk.answers import Explanation, WhereisAnswer, to_json

_inventory_option = farm_inventory_option
_pki_option = farm_pki_option("pki_dir")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")


def _helpdesk(inventory: Path | None, pki_dir: Path | None, vault: VaultOptions):  # type: ignore[no-untyped-def]
    from svpn.helpdesk.service import Helpdesk

    helpdesk = Helpdesk.from_options(inventory or repo_root() / "inventories" / "lab", pki_dir, vault=vault)
    helpdesk.in_process = True  # one question, then the process ends: Ansible runs here, not in a child
    return helpdesk


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def print_whereis(answer: WhereisAnswer) -> None:
    if not answer.users:
        click.echo(f"no user matches {answer.query!r} / 일치하는 사용자가 없습니다")
    for user in answer.users:
        click.echo(f"{user.id}  {user.name}  <{user.email}>  {user.department}")
        click.echo(f"  certificate {user.serial}, {user.status}, until {user.not_after}")
        sessions = answer.sessions_of(user.id)
        if not sessions:
            click.echo("  not connected / 연결되어 있지 않음")
        for s in sessions:
            click.echo(
                f"  connected / 연결됨: {s.node} {s.ike_sa}  virtual IP {s.virtual_ip}  "
                f"from {s.public_address}  since {s.connected_since}  "
                f"in {_size(s.bytes_in)} / out {_size(s.bytes_out)}  as {s.identity}"
            )
    for host in answer.unreachable:
        click.echo(f"not searched / 확인 불가: {host.host}: {host.why}")


def print_explain(answer: Explanation, evidence: int) -> None:
    who = f"{answer.user.id} ({answer.user.name}, {answer.user.status})" if answer.user else answer.query
    click.echo(f"explain {who}")
    for s in answer.sessions:
        click.echo(
            f"  connected now on {s.node} {s.ike_sa}, virtual IP {s.virtual_ip}, since {s.connected_since}"
        )
    for i, f in enumerate(answer.findings):
        where = f" on {f.node} at {f.at} from {f.address}" if f.node else ""
        click.echo(f"{'→' if i == 0 else ' '} [{f.cause}]{where}")
        click.echo(f"    {f.what.ko}\n    {f.what.en}")
        if i == 0:
            click.echo(f"    고객 안내: {f.tell.ko}\n    tell the caller: {f.tell.en}")
            for line in f.evidence[-evidence:] if evidence else ():
                click.echo(f"      | {line}")
    click.echo("checklist / 점검 목록:")
    for n, step in enumerate(answer.checklist, 1):
        click.echo(f"  {n}. {step.ko} / {step.en}")
    for host in answer.unreachable:
        click.echo(f"not searched / 확인 불가: {host.host}: {host.why}")


@click.command("whereis")
@click.argument("query")
@_inventory_option
@_pki_option
@_json_option
@vault_options
def whereis(
    query: str, inventory: Path | None, pki_dir: Path | None, as_json: bool, vault: VaultOptions
) -> None:
    """Where a user is connected: QUERY is an ID, e-mail, name (Korean too, in part), serial or identity."""
    answer = _helpdesk(inventory, pki_dir, vault).whereis(query)
    if as_json:
        click.echo(json.dumps(to_json(answer), ensure_ascii=False, indent=2))
    else:
        print_whereis(answer)


@click.command("explain")
@click.argument("query")
@click.option(
    "--address", default="", help="The caller's public IP address (attempts that sent no identity)."
)
@click.option("--evidence", default=12, show_default=True, help="Log lines to show behind the answer.")
@_inventory_option
@_pki_option
@_json_option
@vault_options
def explain(
    query: str,
    address: str,
    evidence: int,
    inventory: Path | None,
    pki_dir: Path | None,
    as_json: bool,
    vault: VaultOptions,
) -> None:
    """Why a user's last attempts failed, from the farm's attempt logs, in Korean and English.

    QUERY is a user (ID, e-mail, name, serial), an IKE identity, a server's name, or the caller's IP address.
    """
    answer = _helpdesk(inventory, pki_dir, vault).explain(query, address)
    if as_json:
        click.echo(json.dumps(to_json(answer), ensure_ascii=False, indent=2))
    else:
        print_explain(answer, evidence)
