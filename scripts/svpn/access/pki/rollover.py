"""CA rollover: a new CA trusted beside the old one, then the old one retired (``svpn pki ca-rollover``,
``svpn pki ca-retire``). Imports svpn.access (ca, cert_index, cert_policy, certs, pkidir, revocation,
validation, clock) and svpn.core.

:func:`start_rollover` makes the new CA the issuing one (``ca/ca.crt``, ``ca/ca.key``, same passphrase, so the
users' sealed keys stay readable) and keeps the old one as the *previous* CA: its certificate and key
(``ca/previous.*``: it still signs its CRL, ``crl-previous.pem``) and every concentrator's current certificate
from it (``servers/previous/NAME.crt``, same key). Concentrators then trust both CAs and hold both server
certificates; charon picks, per client, the one whose CA the client asks for (its CERTREQ payloads). Every
certificate issued from then on comes from the new CA: a server or user certificate from the old CA is no
longer "still good" (:func:`svpn.access.pki.issuing.still_good`), so the next issue re-issues it with the
same key. :func:`retire_previous` moves the previous CA's files to ``ca/retired/SERIAL/``: concentrators
stop trusting it on their next deploy.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from svpn.access.pki import audit, clock
from svpn.access.pki.ca import CA
from svpn.access.pki.cert_index import Index, index_record
from svpn.access.pki.cert_policy import policies_for
from svpn.access.pki.certs import (
    KEY_TYPES,
    PrivateKey,
    ca_certificate,
    common_name,
    generate_key,
    key_pem,
    load_cert,
    serial_hex,
)
from svpn.access.pki.pkidir import PkiDir, as_dir
from svpn.access.pki.revocation import write_crl
from svpn.access.pki.validation import validate_days, validate_passphrase
from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write


@dataclass(frozen=True)
class RolloverResult:
    """The new CA, the CA it relegated to "previous", and the concentrators that keep a certificate from it."""

    name: str
    serial: str
    previous_name: str
    servers: list[str]


@dataclass(frozen=True)
class RetireResult:
    """The retired CA and where its files went."""

    name: str
    serial: str
    moved_to: Path


def key_type_of(key: PrivateKey) -> str:
    """The :data:`svpn.access.pki.certs.KEY_TYPES` name of *key* (the new CA takes the old one's by default)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ecdsa384" if key.curve.key_size >= 384 else "ecdsa256"
    return "rsa4096" if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 4096 else "rsa3072"


def start_rollover(
    pki_dir: PkiDir | Path,
    ca: CA,
    name: str,
    passphrase: str | None,
    key_type: str | None = None,
    days: int = 3650,
) -> RolloverResult:
    """Make a new CA named *name* the issuing CA and keep *ca* (loaded with *passphrase*) as the previous one.

    Refused while a previous CA is still kept (retire it first), for the current CA's own name (clients
    and charon find a certificate's issuer and a CRL's signer by name), and for a passphrase that does not
    open the CA (the new key is stored under the same one).
    """
    pki = as_dir(pki_dir)
    if ca.previous is not None or pki.previous_ca_cert.exists():
        previous = load_cert(pki.previous_ca_cert)
        held = common_name(previous.subject) if previous is not None else str(pki.previous_ca_cert)
        raise SvpnError(
            f"a CA rollover is under way: {held!r} is still trusted as the previous CA; retire it first "
            "(svpn pki ca-retire) once every user has a bundle from the current CA"
        )
    cn = name.strip()
    if not cn or len(cn) > 64 or not cn.isprintable():
        raise SvpnError(f"name {name!r} is not valid: the CA name must be 1-64 printable characters")
    old_name = common_name(ca.cert.subject)
    if cn == old_name:
        raise SvpnError(f"name {name!r} is the current CA's name: give the new CA another one (e.g. a year)")
    kind = key_type or key_type_of(ca.key)
    if kind not in KEY_TYPES:
        raise SvpnError(f"key type {kind!r} is not valid: one of {', '.join(KEY_TYPES)}")
    validate_days(days)
    secret = validate_passphrase(passphrase)

    key = generate_key(kind)
    now = clock.now()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = ca_certificate(
        key, subject, now - clock.BACKDATE, now + dt.timedelta(days=days), policies=policies_for("ca")
    )
    servers = _servers_from(pki, ca, now)
    index = Index.load(pki)
    index.add(index_record("ca", cn, cert))

    # The old CA is copied aside before the new one takes its place: a run cut short leaves either the old
    # CA in place (run again after removing ca/previous.*) or both, never neither.
    pki.previous_ca_key.parent.mkdir(mode=0o700, exist_ok=True)
    atomic_write(pki.previous_ca_key, pki.ca_key.read_bytes(), 0o600, overwrite=False)
    atomic_write(pki.previous_ca_cert, pki.ca_cert.read_bytes(), 0o644, overwrite=False)
    if pki.crl.exists():
        atomic_write(pki.previous_crl, pki.crl.read_bytes(), 0o644)
    for server in servers:
        target = pki.previous_server_cert(server)
        target.parent.mkdir(mode=0o700, exist_ok=True)
        atomic_write(target, pki.cert_path("server", server).read_bytes(), 0o644)
    atomic_write(pki.ca_key, key_pem(key, secret), 0o600)
    atomic_write(pki.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    index.save(pki)
    write_crl(pki, CA(cert, key, ca.unlock, CA(ca.cert, ca.key)), index=index)
    return RolloverResult(cn, serial_hex(cert.serial_number), old_name, servers)


def _servers_from(pki: PkiDir, ca: CA, now: dt.datetime) -> list[str]:
    """The concentrators whose current certificate (valid, unexpired) the old CA issued."""
    names = []
    for record in Index.load(pki).certs:
        if record["kind"] != "server" or record["status"] != "valid":
            continue
        cert = load_cert(pki.cert_path("server", record["name"]))
        if cert is None or cert.not_valid_after_utc <= now or cert.issuer != ca.cert.subject:
            continue
        if serial_hex(cert.serial_number) == record["serial"]:
            names.append(record["name"])
    return sorted(set(names))


def retire_previous(pki_dir: PkiDir | Path) -> RetireResult:
    """Stop trusting the previous CA: its certificate, key, CRL and the concentrators' certificates from it
    go to ``ca/retired/SERIAL/`` (kept for the record: move the key offline or destroy it). Concentrators
    drop it on their next deploy (playbooks/rotate-certs.yml); its users can no longer connect."""
    pki = as_dir(pki_dir)
    cert = load_cert(pki.previous_ca_cert)
    if cert is None:
        raise SvpnError(f"no previous CA in {pki.path}: nothing to retire (no rollover is under way)")
    serial = serial_hex(cert.serial_number)
    target = pki.retired_dir(serial)
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    servers_dir = pki.previous_server_cert("x").parent
    servers = sorted(servers_dir.glob("*.crt")) if servers_dir.exists() else []
    # The key first (nothing signs for the previous CA any more), the certificate last: a run cut short
    # still finds the rollover under way and finishes it when run again.
    moves = [
        (pki.previous_ca_key, target / "ca.key"),
        (pki.previous_crl, target / "crl.pem"),
        *[(path, target / "servers" / path.name) for path in servers],
        (pki.previous_ca_cert, target / "ca.crt"),
    ]
    for source, dest in moves:
        if source.exists():
            dest.parent.mkdir(mode=0o700, exist_ok=True)
            os.replace(source, dest)
    if servers_dir.exists() and not any(servers_dir.iterdir()):
        servers_dir.rmdir()
    audit.append(pki, [audit.Event("ca_retire", f"ca {common_name(cert.subject)}", {"serial": serial})])
    return RetireResult(common_name(cert.subject), serial, target)


def other_issuer(pki_dir: PkiDir | Path) -> Callable[[str, Mapping[str, Any]], str]:
    """For a users sync (:func:`svpn.access.roster.diff`): the name of the CA that issued a user's current
    certificate when that is not the current CA (a rollover's previous CA, or one retired since), else "".
    Such a user is renewed, so the bundle built next holds a certificate from the CA it trusts. Reads the
    users' certificate files only if the index ever knew another CA."""
    pki = as_dir(pki_dir)
    ca = load_cert(pki.ca_cert)
    names = {record["name"] for record in Index.load(pki).certs if record["kind"] == "ca"}
    if ca is None or len(names) < 2:
        return lambda _user_id, _record: ""

    def check(user_id: str, record: Mapping[str, Any]) -> str:
        cert = load_cert(pki.cert_path("user", user_id))
        if cert is None or serial_hex(cert.serial_number) != record.get("serial") or cert.issuer == ca.subject:
            return ""  # a missing or stray file is another rule's business
        return common_name(cert.issuer) or cert.issuer.rfc4514_string()

    return check
