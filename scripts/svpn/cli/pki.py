"""`svpn pki ...`: the farm's private CA from the command line (the logic lives in svpn.access.pki: ca_setup,
issuing, revocation, cert_index, expiry, backup, restore). Also the PKI options that `svpn users` and
`svpn profiles` share."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from svpn.access.pki import audit, keystore
from svpn.access.pki.backup import make_backup, size_text, summary_lines
from svpn.access.pki.backup_format import read_header
from svpn.access.pki.ca import load_ca
from svpn.access.pki.ca_setup import add_ca_policy, ca_allows_user_policy, init_ca
from svpn.access.pki.cert_index import Index, identities_of_users, list_certs
from svpn.access.pki.cert_policy import USER_CERT_POLICY
from svpn.access.pki.certs import KEY_TYPES
from svpn.access.pki.expiry import CRL_WARN_DAYS, WARN_DAYS, expiry_warnings
from svpn.access.pki.issuing import issue_server, issue_user
from svpn.access.pki.pkidir import Kind, PkiDir, locked
from svpn.access.pki.restore import RestoreResult, read_archive, restore
from svpn.access.pki.revocation import revoke, write_crl
from svpn.access.pki.rollover import retire_previous, start_rollover
from svpn.access.pki.validation import (
    read_passphrase_file,
    validate_dns_name,
    validate_email,
    validate_full_name,
    validate_id,
)
from svpn.cli.options import audited, path_option, warn
from svpn.core.errors import SvpnError
from svpn.core.paths import repo_root

PASSPHRASE_ENV = "SVPN_CA_PASSPHRASE"

_dir_option = path_option(
    "--dir", "pki_dir", kind="dir", help="PKI directory (default: pki/ at the repository root)."
)
_passphrase_option = path_option(
    "--passphrase-file",
    kind="file",
    help=f"File holding the CA passphrase (wins over ${PASSPHRASE_ENV}; one trailing newline is dropped).",
)


def with_secret(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options of a command that needs the CA passphrase: --dir and --passphrase-file."""
    return _dir_option(_passphrase_option(func))


def resolve_dir(pki_dir: Path | None) -> PkiDir:
    """The PKI directory of --dir, by default pki/ at the repository root."""
    return PkiDir(pki_dir if pki_dir is not None else repo_root() / "pki")


def read_passphrase(passphrase_file: Path | None) -> str | None:
    """The CA passphrase: from --passphrase-file if given, else $SVPN_CA_PASSPHRASE (None if neither)."""
    if passphrase_file is not None:
        return read_passphrase_file(passphrase_file)
    return os.environ.get(PASSPHRASE_ENV) or None


def _warn_expiry(pki_path: PkiDir) -> None:
    """After a command worked: what expires soon (as `svpn pki check` with its defaults), on stderr.
    Reads certificates only; never fails the command."""
    try:
        warnings = expiry_warnings(pki_path, dt.datetime.now(dt.UTC))
    except (SvpnError, OSError, ValueError, KeyError, TypeError):
        return
    for warning in warnings:
        warn(str(warning))


def _days(count: int) -> str:
    return f"{count} day{'' if count == 1 else 's'}"


class ExpiryFound(SvpnError):
    """`svpn pki check` found something that expires within the window (listed before this summary)."""

    exit_code = 1


@click.group()
def pki() -> None:
    """The farm's private CA: CA, concentrator and user certificates, CRL.

    The CA passphrase comes from $SVPN_CA_PASSPHRASE or --passphrase-file FILE.
    """


@pki.command("init")
@click.option("--name", required=True, help='CA name (subject CN), e.g. "City VPN CA".')
@click.option("--key-type", type=click.Choice(KEY_TYPES), default="ecdsa384", show_default=True)
@click.option("--days", type=click.IntRange(min=1), default=3650, show_default=True)
@with_secret
@audited
def init_cmd(name: str, key_type: str, days: int, pki_dir: Path | None, passphrase_file: Path | None) -> None:
    """Create the CA (refuses to overwrite an existing one)."""
    pki_path = resolve_dir(pki_dir)
    result = init_ca(pki_path, name, read_passphrase(passphrase_file), key_type=key_type, days=days)
    click.echo(f"{result.action}: ca {result.name} ({result.cert_path})")
    _warn_expiry(pki_path)


@pki.command("server")
@click.argument("name")
@click.option("--san", "sans", multiple=True, required=True, help="DNS name (repeat for several).")
@click.option("--days", type=click.IntRange(min=1), default=825, show_default=True)
@click.option(
    "--renew",
    is_flag=True,
    help="Issue a new certificate (same key) even if the current one is still good; the old serial is "
    "superseded and stays valid until it expires.",
)
@with_secret
@audited
def server_cmd(
    name: str,
    sans: tuple[str, ...],
    days: int,
    renew: bool,
    pki_dir: Path | None,
    passphrase_file: Path | None,
) -> None:
    """Issue (or keep) the concentrator certificate NAME."""
    pki_path = resolve_dir(pki_dir)
    # Validate the request before asking for the CA key, so a typo costs nothing.
    validate_id(name, "NAME")
    for san in sans:
        validate_dns_name(san)
    ca = load_ca(pki_path, read_passphrase(passphrase_file))
    with locked(pki_path):
        click.echo(str(issue_server(pki_path, ca, name, list(sans), days=days, renew=renew)))
    _warn_expiry(pki_path)


@pki.command("user")
@click.argument("user_id", metavar="ID")
@click.option("--email", default=None, help="E-mail address (SAN rfc822Name).")
@click.option("--name", "full_name", default=None, help="Full name (kept in the index).")
@click.option("--days", type=click.IntRange(min=1), default=730, show_default=True)
@with_secret
@audited
def user_cmd(
    user_id: str,
    email: str | None,
    full_name: str | None,
    days: int,
    pki_dir: Path | None,
    passphrase_file: Path | None,
) -> None:
    """Issue (or keep) the certificate of user ID."""
    pki_path = resolve_dir(pki_dir)
    validate_id(user_id, "ID")
    if email is not None:
        validate_email(email)
    if full_name is not None:
        validate_full_name(full_name)
    ca = load_ca(pki_path, read_passphrase(passphrase_file))
    with locked(pki_path):
        click.echo(str(issue_user(pki_path, ca, user_id, email=email, name=full_name, days=days)))
    _warn_expiry(pki_path)


@pki.command("revoke")
@click.argument("name", metavar="ID")
@click.option("--server", "is_server", is_flag=True, help="ID is a concentrator NAME, not a user.")
@with_secret
@audited
def revoke_cmd(name: str, is_server: bool, pki_dir: Path | None, passphrase_file: Path | None) -> None:
    """Revoke the current certificate of ID and rewrite the CRL."""
    pki_path = resolve_dir(pki_dir)
    kind: Kind = "server" if is_server else "user"
    validate_id(name, "NAME" if is_server else "ID")
    ca = load_ca(pki_path, read_passphrase(passphrase_file))
    with locked(pki_path):
        outcome = revoke(pki_path, ca, name, kind)
    if outcome == "unchanged":
        click.echo(f"unchanged: already revoked: {kind} {name}")
    else:
        click.echo(f"revoked: {kind} {name} (CRL {pki_path.crl})")
    _warn_expiry(pki_path)


@pki.command("crl")
@click.option(
    "--days", type=click.IntRange(min=1), default=7, show_default=True, help="nextUpdate: now + days."
)
@with_secret
@audited
def crl_cmd(days: int, pki_dir: Path | None, passphrase_file: Path | None) -> None:
    """(Re)write crl.pem with every revoked serial."""
    pki_path = resolve_dir(pki_dir)
    ca = load_ca(pki_path, read_passphrase(passphrase_file))
    with locked(pki_path):
        click.echo(f"written: {write_crl(pki_path, ca, days)}")
    _warn_expiry(pki_path)


@pki.command("ca-rollover")
@click.option("--name", required=True, help='The new CA\'s name (subject CN), e.g. "City VPN CA 2031".')
@click.option("--key-type", type=click.Choice(KEY_TYPES), default=None, help="Default: the current CA's.")
@click.option("--days", type=click.IntRange(min=1), default=3650, show_default=True)
@with_secret
@audited
def ca_rollover_cmd(
    name: str, key_type: str | None, days: int, pki_dir: Path | None, passphrase_file: Path | None
) -> None:
    """Start a CA rollover: a new CA issues from now on; the current one stays trusted as the previous CA
    (its CRL kept signed, the concentrators' certificates from it kept) until `svpn pki ca-retire`."""
    pki_path = resolve_dir(pki_dir)
    passphrase = read_passphrase(passphrase_file)
    ca = load_ca(pki_path, passphrase)
    with locked(pki_path):
        result = start_rollover(pki_path, ca, name, passphrase, key_type=key_type, days=days)
    click.echo(f"issued: ca {result.name} (serial {result.serial}, {pki_path.ca_cert})")
    click.echo(
        f"kept: previous ca {result.previous_name} ({pki_path.previous_ca_cert}, CRL {pki_path.previous_crl})"
    )
    for server in result.servers:
        click.echo(f"kept: server {server} from the previous ca ({pki_path.previous_server_cert(server)})")
    click.echo("next: ansible-playbook playbooks/rotate-certs.yml, then re-issue the users' bundles")
    _warn_expiry(pki_path)


@pki.command("ca-retire")
@_dir_option
@audited
def ca_retire_cmd(pki_dir: Path | None) -> None:
    """End a CA rollover: the previous CA's files go to ca/retired/SERIAL/; concentrators stop trusting it
    (and its users) on the next playbooks/rotate-certs.yml. No passphrase needed: nothing is signed."""
    pki_path = resolve_dir(pki_dir)
    with locked(pki_path):
        result = retire_previous(pki_path)
    click.echo(f"retired: ca {result.name} (serial {result.serial}, moved to {result.moved_to})")
    click.echo("next: ansible-playbook playbooks/rotate-certs.yml")


class AuditBroken(SvpnError):
    """`svpn pki audit` found the hash chain broken (the finding is the message)."""

    exit_code = 1


@pki.command("audit")
@click.option("--last", type=click.IntRange(min=0), default=20, show_default=True, help="Entries to show.")
@click.option("--json", "as_json", is_flag=True, help="The verdict and the entries shown, as JSON.")
@_dir_option
def audit_cmd(last: int, as_json: bool, pki_dir: Path | None) -> None:
    """Verify the audit trail's hash chain (and the newest entry index.json records), show the newest
    entries. Exit 1 when the chain is broken. Read-only; no passphrase."""
    pki_path = resolve_dir(pki_dir)
    path = audit.audit_path(pki_path)
    check = audit.verify_chain(path, Index.load(pki_path).audit_head)
    shown = audit.read_entries(path)[-last:] if last and check.first_bad != 1 else []
    if as_json:
        data = {"path": str(path), **dataclasses.asdict(check), "entries": [audit.to_json(e) for e in shown]}
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        for entry in shown:
            reason = f" ({entry.reason})" if entry.reason else ""
            line = f"{entry.seq:>6} {entry.time} {entry.operator}: {entry.action} {entry.subject}{reason}"
            click.echo(line)
    if not check.ok:
        raise AuditBroken(f"audit trail {path} is broken at entry {check.first_bad}: {check.problem}")
    if not as_json:
        click.echo(f"ok: {path}: {check.entries} entries, the chain verifies (newest {check.head[:16]})")


@pki.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON: a list of objects.")
@_dir_option
def list_cmd(as_json: bool, pki_dir: Path | None) -> None:
    """List the certificates in the index (no passphrase needed)."""
    pki_path = resolve_dir(pki_dir)
    rows = list_certs(pki_path)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        headers = {
            "serial": "SERIAL",
            "kind": "KIND",
            "cn": "CN",
            "not_after": "NOT AFTER",
            "status": "STATUS",
        }
        table = [headers] + [{**row, "not_after": row["not_after"][:10]} for row in rows]
        widths = {key: max(len(r[key]) for r in table) for key in headers}
        for row in table:
            click.echo("  ".join(row[key].ljust(widths[key]) for key in headers).rstrip())
    _warn_expiry(pki_path)


@pki.command("identities")
@click.argument("user_ids", metavar="ID...", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help='JSON: {"ID": ["CN=ID", "e-mail", ...], ...}.')
@_dir_option
def identities_cmd(user_ids: tuple[str, ...], as_json: bool, pki_dir: Path | None) -> None:
    """Every IKE identity the certificates ever issued to each user ID carry (current, superseded and
    revoked ones), as strongSwan shows them: the subject DN and each SAN. No passphrase needed."""
    pki_path = resolve_dir(pki_dir)
    found = identities_of_users(pki_path, list(dict.fromkeys(user_ids)))
    if as_json:
        click.echo(json.dumps(found, indent=2))
    else:
        for user_id, identities in found.items():
            click.echo(user_id)
            for identity in identities:
                click.echo(f"  {identity}")
    _warn_expiry(pki_path)


@pki.command("ca-policy")
@with_secret
def ca_policy_cmd(pki_dir: Path | None, passphrase_file: Path | None) -> None:
    """Make the CA certificate allow the user-certificate policy (a CA made before it existed): re-signed
    with the same key, subject and validity. Concentrators that require the policy need this CA
    certificate; until then they refuse every user. The passphrase is only needed to change it."""
    pki_path = resolve_dir(pki_dir)
    policy = USER_CERT_POLICY.dotted_string
    if ca_allows_user_policy(pki_path):
        click.echo(f"unchanged: CA certificate {pki_path.ca_cert} already allows policy {policy}")
    else:
        ca = load_ca(pki_path, read_passphrase(passphrase_file))
        with locked(pki_path):
            outcome = add_ca_policy(pki_path, ca)
        click.echo(f"{outcome}: CA certificate {pki_path.ca_cert} allows policy {policy}")
    _warn_expiry(pki_path)


@pki.command("check")
@click.option(
    "--warn-days",
    type=click.IntRange(min=0),
    default=WARN_DAYS,
    show_default=True,
    help="Window for the CA and the concentrator certificates, in days.",
)
@click.option(
    "--crl-warn-days",
    type=click.IntRange(min=0),
    default=CRL_WARN_DAYS,
    show_default=True,
    help="Window for the CRL's nextUpdate, in days (a CRL lives 7 days and is re-signed daily).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON: a list of objects, one per item.")
@_dir_option
def check_cmd(warn_days: int, crl_warn_days: int, as_json: bool, pki_dir: Path | None) -> None:
    """List what expires soon: the CA, concentrator certificates, the CRL (no passphrase needed).

    One line per item that expires within the window or already has; exits 1 if there is any, 0 if not.
    """
    pki_path = resolve_dir(pki_dir)
    warnings = expiry_warnings(pki_path, dt.datetime.now(dt.UTC), warn_days, crl_warn_days)
    if as_json:
        click.echo(json.dumps([w.to_json() for w in warnings], indent=2))
    else:
        for warning in warnings:
            click.echo(str(warning))
    if warnings:
        expired = sum(1 for w in warnings if w.expired)
        raise ExpiryFound(
            f"{len(warnings)} item(s) in {pki_path.path} expire within {_days(warn_days)} (the CRL within "
            f"{_days(crl_warn_days)}), {expired} already expired or missing"
        )
    if not as_json:
        click.echo(
            f"ok: nothing in {pki_path.path} expires within {_days(warn_days)} (the CRL within "
            f"{_days(crl_warn_days)})"
        )


@pki.command("backup")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The archive to write (0600; outside the PKI directory).",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--json", "as_json", is_flag=True, help="JSON: what the archive holds.")
@with_secret
def backup_cmd(
    out: Path, force: bool, as_json: bool, pki_dir: Path | None, passphrase_file: Path | None
) -> None:
    """Write the whole PKI directory (CA, index, CRL, server and user material) to one archive, encrypted
    (AES-256-GCM) under a key derived from the CA passphrase. The passphrase must open the CA key first."""
    pki_path = resolve_dir(pki_dir)
    result = make_backup(pki_path, out, read_passphrase(passphrase_file), force=force)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(f"written: {result.path} ({size_text(result.archive_bytes)}, mode 0600)")
        for line in summary_lines(result.meta, keystore.CA_KDF):
            click.echo(line)
    for warning in result.warnings:
        warn(warning)
    _warn_expiry(pki_path)


@pki.command("restore")
@click.argument("archive", metavar="FILE", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--check", is_flag=True, help="Open and check FILE, say what a restore would do; write nothing."
)
@click.option(
    "--force",
    is_flag=True,
    help="Restore over another CA's or a newer PKI (kept aside as DIR.replaced-TIMESTAMP, never deleted).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON: what was restored (or checked).")
@with_secret
def restore_cmd(
    archive: Path, check: bool, force: bool, as_json: bool, pki_dir: Path | None, passphrase_file: Path | None
) -> None:
    """Restore the PKI directory from a backup FILE (the CA passphrase opens it). A wrong passphrase, an
    altered archive, another CA's PKI or a newer one in --dir is refused and nothing is written."""
    passphrase = read_passphrase(passphrase_file)
    if check and passphrase is None:
        _header_only(archive, as_json)
    pki_path = resolve_dir(pki_dir)
    result = restore(archive, pki_path.path, passphrase, force=force, check_only=check)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(_restore_line(result))
        for line in summary_lines(result.archive.header.meta, result.archive.header.kdf):
            click.echo(line)
    for warning in result.archive.warnings:
        warn(warning)
    if result.action != "checked":
        _warn_expiry(pki_path)  # what the restored PKI needs soon (an old backup's CRL has expired)


def _restore_line(result: RestoreResult) -> str:
    target, source = result.target, result.archive.path
    if result.action == "unchanged":
        return f"unchanged: {target.path} already holds exactly {source}"
    if result.action == "restored":
        kept = f"; the PKI that was there is kept as {result.replaced}" if result.replaced else ""
        return f"restored: {target.path} from {source}{kept}"
    verdict = " (a restore is refused without --force)" if target.refused else ""
    return f"ok: {source} opens with the CA passphrase and holds a whole PKI; {target.describe()}{verdict}"


def _header_only(archive: Path, as_json: bool) -> None:
    """`restore --check` without a passphrase: print the header, then refuse to call it checked."""
    header = read_header(read_archive(archive), str(archive))
    if as_json:
        click.echo(json.dumps({"action": "header", "file": str(archive), **header.meta}, indent=2))
    else:
        click.echo(f"header of {archive} (not authenticated):")
        for line in summary_lines(header.meta, header.kdf):
            click.echo(line)
    raise SvpnError(
        f"{archive} is not verified: its header was read, but only the CA passphrase authenticates it "
        "and opens the payload (set SVPN_CA_PASSPHRASE or pass --passphrase-file FILE)"
    )
