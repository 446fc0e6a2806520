"""Option helpers and the warning line shared by the CLI's command modules."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click

from svpn.access.pki.audit import acting_as
from svpn.core.ansible_inventory import VaultOptions


def path_option(*decls: str, kind: Literal["dir", "file"], help: str, **extra: Any) -> Callable[..., Any]:
    """A ``--x PATH`` option whose value is a :class:`Path` to a directory or to a file (None if not given).

    No explicit ``default=None``: click (8.3 and later) then counts the option as given, and
    ``required=True`` would let a missing value through as None.
    """
    path_type = click.Path(file_okay=kind == "file", dir_okay=kind == "dir", path_type=Path)
    return click.option(*decls, type=path_type, help=help, **extra)


def warn(message: str) -> None:
    """One warning line on stderr, as every svpn command writes them (after its work is done)."""
    click.echo(f"svpn: warning: {message}", err=True)


def vault_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--vault-password-file`` and ``--vault-id``, as ansible-playbook takes them, passed on as one
    ``vault`` argument (a :class:`VaultOptions`). ANSIBLE_VAULT_PASSWORD_FILE, ANSIBLE_VAULT_IDENTITY_LIST and
    ansible.cfg's vault settings apply as well: ansible-core reads them."""

    def wrapper(
        *args: Any, vault_password_files: tuple[str, ...], vault_ids: tuple[str, ...], **kw: Any
    ) -> Any:
        return func(*args, vault=VaultOptions(tuple(vault_password_files), tuple(vault_ids)), **kw)

    wrapper = functools.update_wrapper(wrapper, func)
    wrapper = click.option(
        "--vault-id",
        "vault_ids",
        multiple=True,
        metavar="[LABEL@]SOURCE",
        help="A vault identity for the inventory's vault values, as ansible-playbook's (repeatable).",
    )(wrapper)
    return click.option(
        "--vault-password-file",
        "vault_password_files",
        multiple=True,
        type=click.Path(dir_okay=False, path_type=str),
        help="A file with the vault password of the inventory's encrypted values (repeatable).",
    )(wrapper)


def audited(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--reason TEXT`` for a command that changes the PKI or the users: its changes go to the PKI's audit
    trail (svpn.access.pki.audit) with that reason and the operator ($SVPN_OPERATOR, else the user behind
    sudo, else the login name)."""

    def wrapper(*args: Any, reason: str, **kw: Any) -> Any:
        with acting_as(reason=reason):
            return func(*args, **kw)

    wrapper = functools.update_wrapper(wrapper, func)
    return click.option(
        "--reason",
        default="",
        metavar="TEXT",
        help="Why: recorded with the changes in the PKI's audit trail (audit.jsonl), beside the operator "
        "($SVPN_OPERATOR, else the user behind sudo, else the login name).",
    )(wrapper)


# The farm's inventory and PKI, as the commands that read the live farm take them (status, report, helpdesk).
farm_inventory_option = path_option(
    "--inventory",
    "-i",
    "inventory",
    kind="dir",
    help="The farm's inventory (default: inventories/lab, as ansible.cfg); vault values need "
    "--vault-password-file or --vault-id.",
)


def farm_pki_option(dest: str = "pki") -> Callable[..., Any]:
    return path_option(
        "--pki", dest, kind="dir", help="The PKI directory (default: the inventory's svpn_pki_dir)."
    )
