"""`svpn pki ...`: the farm's private CA from the command line (the logic lives in svpn.pki)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from svpn import pki as lib
from svpn.cliopts import path_option
from svpn.fsutil import repo_root

PASSPHRASE_ENV = "SVPN_CA_PASSPHRASE"

_dir_option = path_option(
    "--dir", "pki_dir", kind="dir", help="PKI directory (default: pki/ at the repository root)."
)
_passphrase_option = path_option(
    "--passphrase-file",
    kind="file",
    help=f"File holding the CA passphrase (wins over ${PASSPHRASE_ENV}; one trailing newline is dropped).",
)


def _with_secret(func: Callable[..., Any]) -> Callable[..., Any]:
    return _dir_option(_passphrase_option(func))


def _resolve_dir(pki_dir: Path | None) -> lib.PkiDir:
    return lib.PkiDir(pki_dir if pki_dir is not None else repo_root() / "pki")


def _passphrase(passphrase_file: Path | None) -> str | None:
    if passphrase_file is not None:
        return lib.read_passphrase_file(passphrase_file)
    return os.environ.get(PASSPHRASE_ENV) or None


@click.group()
def pki() -> None:
    """The farm's private CA: CA, concentrator and user certificates, CRL.

    The CA passphrase comes from $SVPN_CA_PASSPHRASE or --passphrase-file FILE.
    """


@pki.command("init")
@click.option("--name", required=True, help='CA name (subject CN), e.g. "City VPN CA".')
@click.option("--key-type", type=click.Choice(lib.KEY_TYPES), default="ecdsa384", show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=3650, show_default=True)
@_with_secret
def init_cmd(name: str, key_type: str, days: int, pki_dir: Path | None, passphrase_file: Path | None) -> None:
    """Create the CA (refuses to overwrite an existing one)."""
    pki_path = _resolve_dir(pki_dir)
    result = lib.init_ca(pki_path, name, _passphrase(passphrase_file), key_type=key_type, days=days)
    click.echo(f"{result.action}: ca {result.name} ({result.cert_path})")


@pki.command("server")
@click.argument("name")
@click.option("--san", "sans", multiple=True, required=True, help="DNS name (repeat for several).")
@click.option("--days", type=click.IntRange(min=1), default=825, show_default=True)
@_with_secret
def server_cmd(
    name: str, sans: tuple[str, ...], days: int, pki_dir: Path | None, passphrase_file: Path | None
) -> None:
    """Issue (or keep) the concentrator certificate NAME."""
    pki_path = _resolve_dir(pki_dir)
    # Validate the request before asking for the CA key, so a typo costs nothing.
    lib.validate_id(name, "NAME")
    for san in sans:
        lib.validate_dns_name(san)
    ca = lib.load_ca(pki_path, _passphrase(passphrase_file))
    with lib.locked(pki_path):
        click.echo(str(lib.issue_server(pki_path, ca, name, list(sans), days=days)))


@pki.command("user")
@click.argument("user_id", metavar="ID")
@click.option("--email", default=None, help="E-mail address (SAN rfc822Name).")
@click.option("--name", "full_name", default=None, help="Full name (kept in the index).")
@click.option("--days", type=click.IntRange(min=1), default=730, show_default=True)
@_with_secret
def user_cmd(
    user_id: str,
    email: str | None,
    full_name: str | None,
    days: int,
    pki_dir: Path | None,
    passphrase_file: Path | None,
) -> None:
    """Issue (or keep) the certificate of user ID."""
    pki_path = _resolve_dir(pki_dir)
    lib.validate_id(user_id, "ID")
    if email is not None:
        lib.validate_email(email)
    if full_name is not None:
        lib.validate_full_name(full_name)
    ca = lib.load_ca(pki_path, _passphrase(passphrase_file))
    with lib.locked(pki_path):
        click.echo(str(lib.issue_user(pki_path, ca, user_id, email=email, name=full_name, days=days)))


@pki.command("revoke")
@click.argument("name", metavar="ID")
@click.option("--server", "is_server", is_flag=True, help="ID is a concentrator NAME, not a user.")
@_with_secret
def revoke_cmd(name: str, is_server: bool, pki_dir: Path | None, passphrase_file: Path | None) -> None:
    """Revoke the current certificate of ID and rewrite the CRL."""
    pki_path = _resolve_dir(pki_dir)
    kind: lib.Kind = "server" if is_server else "user"
    lib.validate_id(name, "NAME" if is_server else "ID")
    ca = lib.load_ca(pki_path, _passphrase(passphrase_file))
    with lib.locked(pki_path):
        outcome = lib.revoke(pki_path, ca, name, kind)
    if outcome == "unchanged":
        click.echo(f"unchanged: already revoked: {kind} {name}")
    else:
        click.echo(f"revoked: {kind} {name} (CRL {pki_path.crl})")


@pki.command("crl")
@click.option(
    "--days", type=click.IntRange(min=1), default=7, show_default=True, help="nextUpdate: now + days."
)
@_with_secret
def crl_cmd(days: int, pki_dir: Path | None, passphrase_file: Path | None) -> None:
    """(Re)write crl.pem with every revoked serial."""
    pki_path = _resolve_dir(pki_dir)
    ca = lib.load_ca(pki_path, _passphrase(passphrase_file))
    with lib.locked(pki_path):
        click.echo(f"written: {lib.write_crl(pki_path, ca, days)}")


@pki.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON: a list of objects.")
@_dir_option
def list_cmd(as_json: bool, pki_dir: Path | None) -> None:
    """List the certificates in the index (no passphrase needed)."""
    rows = lib.list_certs(_resolve_dir(pki_dir))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    headers = {"serial": "SERIAL", "kind": "KIND", "cn": "CN", "not_after": "NOT AFTER", "status": "STATUS"}
    table = [headers] + [{**row, "not_after": row["not_after"][:10]} for row in rows]
    widths = {key: max(len(r[key]) for r in table) for key in headers}
    for row in table:
        click.echo("  ".join(row[key].ljust(widths[key]) for key in headers).rstrip())
