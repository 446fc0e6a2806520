"""The one `svpn` command: wires the modules' commands together and turns errors into one line."""

from __future__ import annotations

import sys

import click

from svpn import __version__
from svpn.core.errors import SvpnError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="svpn")
def cli() -> None:
    """SVPN farm: certificates, lab hosts, plans and status for a strongSwan VPN farm."""


def _register() -> None:
    from svpn.cli import lab as cli_lab
    from svpn.cli import pki as cli_pki

    cli.add_command(cli_pki.pki)
    cli.add_command(cli_lab.lab)
    # planner commands (plan, inventory) register here
    from svpn.cli import plan as cli_plan

    cli.add_command(cli_plan.plan)
    cli.add_command(cli_plan.inventory)
    # users commands (users, profiles) register here
    from svpn.cli import users as cli_users

    cli.add_command(cli_users.users)
    cli.add_command(cli_users.profiles)
    # load test (loadtest) registers here
    from svpn.cli import loadtest as cli_loadtest

    cli.add_command(cli_loadtest.loadtest)
    # helpdesk (whereis, explain) registers here
    from svpn.cli import helpdesk as cli_helpdesk

    cli.add_command(cli_helpdesk.whereis)
    cli.add_command(cli_helpdesk.explain)
    # the helpdesk's web page and its agents (helpdesk serve, helpdesk agent ...) register here
    from svpn.cli import helpdesk_web as cli_helpdesk_web

    cli.add_command(cli_helpdesk_web.helpdesk)
    # the farm at a glance (status) registers here
    from svpn.cli import status as cli_status

    cli.add_command(cli_status.status)


def main(argv: list[str] | None = None) -> int:
    _register()
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
