"""The one `svpn` command: wires the modules' commands together and turns errors into one line."""

from __future__ import annotations

import importlib
import sys

import click

from svpn import __version__
from svpn.core.errors import SvpnError

# Each command, by name, and where it lives: a command's module is imported only when it runs (or for
# `svpn --help`), so `svpn whereis` with a caller on the line does not first load the PKI, planner, lab and
# load-test commands (about half a second of a busy core).
COMMANDS: dict[str, str] = {
    "pki": "svpn.cli.pki:pki",
    "lab": "svpn.cli.lab:lab",
    "plan": "svpn.cli.plan:plan",
    "inventory": "svpn.cli.plan:inventory",
    "users": "svpn.cli.users:users",
    "profiles": "svpn.cli.users:profiles",
    "loadtest": "svpn.cli.loadtest:loadtest",
    "status": "svpn.cli.status:status",
    "whereis": "svpn.cli.helpdesk:whereis",
    "explain": "svpn.cli.helpdesk:explain",
    "helpdesk": "svpn.cli.helpdesk_web:helpdesk",
    "report": "svpn.cli.report:report",
}


class LazyGroup(click.Group):
    """click's group, loading each command from :data:`COMMANDS` the first time it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module, attribute = COMMANDS[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="svpn")
def cli() -> None:
    """SVPN farm: certificates, lab hosts, plans and status for a strongSwan VPN farm."""


def _register() -> None:
    """Load every command now (the tests walk the whole tree)."""
    context = click.Context(cli, info_name="svpn")
    for name in COMMANDS:
        cli.get_command(context, name)


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="svpn", standalone_mode=False)
    except SvpnError as err:
        click.echo(f"svpn: error: {err}", err=True)
        return err.exit_code
    except click.exceptions.Abort:
        click.echo("svpn: aborted", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return 2
    except KeyboardInterrupt:
        click.echo("svpn: interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
