"""`svpn helpdesk serve` and `svpn helpdesk agent add|remove|list`: the helpdesk's web page and the agents
who may log in to it (the page lives in svpn.helpdesk.web)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from svpn.cli.options import path_option, vault_options
from svpn.core.ansible_inventory import VaultOptions
from svpn.core.errors import SvpnError
from svpn.core.paths import repo_root
from svpn.helpdesk.web import agents as agents_lib
from svpn.helpdesk.web.state import is_loopback

DEFAULT_PORT = 8088


def state_dir() -> Path:
    """Where the agents file and the audit log are kept unless named: helpdesk/ beside the default pki/
    (both ignored by git; `make clean` keeps them, unlike .lab/)."""
    return repo_root() / "helpdesk"


def _agents_path(path: Path | None) -> Path:
    return path if path is not None else state_dir() / "agents.json"


_agents_option = path_option(
    "--agents",
    "agents_file",
    kind="file",
    help="The agents file: name → password hash, 0600 (default: helpdesk/agents.json in the repository).",
)


def check_bind(bind: str, agents_file: Path) -> str:
    """The address to listen on, refused off loopback while no agent could log in."""
    address = "127.0.0.1" if bind == "localhost" else bind
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise SvpnError(
            f"--bind {bind!r} is not an IP address: give one of this machine's addresses "
            "(127.0.0.1, the default, serves this machine only; 0.0.0.0 or :: every address)"
        ) from None
    if not is_loopback(address) and not agents_lib.load(agents_file):
        raise SvpnError(
            f"--bind {bind}: off localhost every page needs an agent's login, and {str(agents_file)!r} "
            "has no agent: add one with `svpn helpdesk agent add NAME` (and the same --agents), or keep "
            "the default --bind 127.0.0.1"
        )
    return address


@click.group()
def helpdesk() -> None:
    """The helpdesk's web page and its agents."""


@helpdesk.command("serve")
@path_option(
    "--inventory",
    kind="dir",
    help="The farm's inventory (default: inventories/lab, as ansible.cfg); vault values need "
    "--vault-password-file or --vault-id.",
)
@path_option("--pki", "pki_dir", kind="dir", help="PKI directory (default: the inventory's svpn_pki_dir).")
@path_option("--bundles", kind="dir", help="The users' bundle directory, for rebuilding a bundle.")
@path_option(
    "--passwords",
    kind="file",
    help="CSV of bundle passwords (default: passwords.csv beside the bundle directory).",
)
@vault_options
@_agents_option
@path_option(
    "--audit-log",
    kind="file",
    help="JSON Lines audit log of logins and actions, appended and synced (default: helpdesk/audit.jsonl "
    "in the repository).",
)
@click.option(
    "--bind",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on. Off loopback every page needs an agent's login (and an agent must exist).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True)
def serve(
    inventory: Path | None,
    pki_dir: Path | None,
    bundles: Path | None,
    passwords: Path | None,
    vault: VaultOptions,
    agents_file: Path | None,
    audit_log: Path | None,
    bind: str,
    port: int,
) -> None:
    """Serve the helpdesk's web page: search a user, see where they are connected and why their attempts
    failed, print the caller's checklist; logged-in agents end sessions and rebuild bundles."""
    agents_path = _agents_path(agents_file)
    address = check_bind(bind, agents_path)
    audit_path = audit_log if audit_log is not None else state_dir() / "audit.jsonl"

    import waitress

    from svpn.helpdesk.service import Helpdesk  # the backend: imported only when a server starts
    from svpn.helpdesk.web.app import Settings, create_app
    from svpn.helpdesk.web.audit import AuditLog

    AuditLog(audit_path).check()
    backend = Helpdesk.from_options(
        inventory=inventory if inventory is not None else repo_root() / "inventories" / "lab",
        pki_dir=pki_dir,
        bundles_dir=bundles,
        passwords=passwords,
        vault=vault,
    )
    app = create_app(backend, Settings(agents_file=agents_path, audit_log=audit_path, bind=address))
    host = f"[{address}]" if ":" in address else address
    who = "agents log in for every page" if not is_loopback(address) else "agents log in for the actions"
    click.echo(f"svpn helpdesk: http://{host}:{port}/ ({who}); audit log {audit_path}", err=True)
    waitress.serve(app, host=address, port=port, threads=8, ident="svpn-helpdesk")


@helpdesk.group("agent")
def agent() -> None:
    """The agents who may log in to the web page."""


@agent.command("add")
@click.argument("name")
@_agents_option
@path_option(
    "--password-file",
    kind="file",
    help="Read the password from FILE (one trailing newline dropped) instead of a prompt.",
)
@click.option("--replace", is_flag=True, help="Give an existing agent a new password.")
def agent_add(name: str, agents_file: Path | None, password_file: Path | None, replace: bool) -> None:
    """Add agent NAME (a-z 0-9 . _ -), with a password of at least 12 characters."""
    from svpn.access.pki.validation import read_passphrase_file

    path = _agents_path(agents_file)
    agents_lib.validate_name(name)
    if password_file is not None:
        password = read_passphrase_file(password_file)
    else:
        password = click.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    agents_lib.add(path, name, password, replace=replace)
    click.echo(f"agent {name} {'has a new password' if replace else 'added'} in {path}")


@agent.command("remove")
@click.argument("name")
@_agents_option
def agent_remove(name: str, agents_file: Path | None) -> None:
    """Remove agent NAME: their login ends at their next click."""
    path = _agents_path(agents_file)
    agents_lib.remove(path, name)
    click.echo(f"agent {name} removed from {path}")


@agent.command("list")
@_agents_option
def agent_list(agents_file: Path | None) -> None:
    """The agents, one per line with the time they were added."""
    for found in sorted(agents_lib.load(_agents_path(agents_file)).values(), key=lambda a: a.name):
        click.echo(f"{found.name}\t{found.added}")


@helpdesk.command("bench")
@path_option(
    "--inventory", "-i", "inventory", kind="dir", help="The farm's inventory (default: inventories/lab)."
)
@path_option("--pki", "pki_dir", kind="dir", help="PKI directory (default: the inventory's svpn_pki_dir).")
@click.option("--query", default="alice", show_default=True, help="The user whereis and explain look for.")
@click.option(
    "--runs", type=click.IntRange(1, 50), default=5, show_default=True, help="Runs of each command."
)
@path_option("--json", "json_out", kind="file", help="Also write the figures as JSON to FILE.")
def bench(inventory: Path | None, pki_dir: Path | None, query: str, runs: int, json_out: Path | None) -> None:
    """Time `svpn status`, `whereis QUERY` and `explain QUERY` as an agent runs them (medians of RUNS)."""
    import json

    from svpn.core.files import atomic_write
    from svpn.helpdesk import bench as lib

    target = inventory if inventory is not None else repo_root() / "inventories" / "lab"
    timings, users = lib.run(target, pki_dir, query, runs, progress=lambda line: click.echo(line, err=True))
    figures = lib.report(timings, users, query)
    click.echo(f"{users} users connected; query {query!r}; {runs} runs each")
    for t in timings:
        verdict = "ok" if t.met else "OVER THE GOAL"
        click.echo(
            f"  {t.command:8} median {t.median:5.2f} s  worst {t.worst:5.2f} s  "
            f"goal < {t.goal:.0f} s  {verdict}"
        )
    if json_out is not None:
        atomic_write(json_out, json.dumps(figures, indent=2) + "\n", 0o644)
