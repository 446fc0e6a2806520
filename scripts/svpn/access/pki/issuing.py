"""Issuing and renewing concentrator (server) and user certificates. A request whose current certificate is
still good (ours, valid, its key, the same SANs and policies) leaves everything unchanged; otherwise a new
certificate is issued with the existing key (a new key only when there is none), and the index records it.
Imports svpn.access (ca, cert_index, cert_policy, certs, pkidir, user_keys, validation, clock), svpn.core.

Everything is validated, and the CA key loaded and decrypted, before anything is written; private keys are
never overwritten. Bulk issuing: load the index once with :func:`svpn.access.pki.cert_index.bulk` and pass it::

    ca = load_ca(pki_dir, passphrase)
    with bulk(pki_dir) as index:
        for uid in ids:
            issue_user(pki_dir, ca, uid, index=index)
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from svpn.access.pki import clock
from svpn.access.pki.ca import CA
from svpn.access.pki.cert_index import Index, index_record
from svpn.access.pki.cert_policy import cert_policies, policies_extension, policies_for
from svpn.access.pki.certs import PrivateKey, hash_for, key_pem, key_usage, load_cert, public_der, serial_hex
from svpn.access.pki.pkidir import Kind, PkiDir, as_dir
from svpn.access.pki.user_keys import existing_key, user_key, write_new_key
from svpn.access.pki.validation import (
    validate_days,
    validate_dns_name,
    validate_email,
    validate_full_name,
    validate_id,
)
from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write

IKE_INTERMEDIATE = ObjectIdentifier("1.3.6.1.5.5.8.2.2")


@dataclass(frozen=True)
class IssueResult:
    """What a request did: ``issued`` a certificate, or left the current one ``unchanged``."""

    kind: Kind
    name: str
    serial: str
    action: Literal["issued", "unchanged"]
    cert_path: Path
    key_path: Path

    def __str__(self) -> str:
        return f"{self.action}: {self.kind} {self.name}"


def issue_server(
    pki_dir: PkiDir | Path,
    ca: CA,
    name: str,
    sans: list[str],
    days: int = 825,
    *,
    index: Index | None = None,
    renew: bool = False,
) -> IssueResult:
    """Concentrator certificate: CN=NAME, the DNS SANs given, EKU serverAuth + IKE intermediate.

    Unchanged if a valid certificate with the same SANs exists; otherwise (re-)issued, reusing the
    existing key. *renew* issues a new one (new serial and validity, same key) even then: the one it
    replaces is marked superseded and stays valid until it expires (same key: revoking it alone would
    protect nothing). With *index* (see :func:`svpn.access.pki.cert_index.bulk`) the index is not saved here.
    """
    validate_id(name, "NAME")
    if not sans:
        raise SvpnError(f"SAN is missing for server {name!r}: give at least one --san DNS name")
    dns = list(dict.fromkeys(validate_dns_name(s) for s in sans))
    validate_days(days)
    idx = Index.load(pki_dir) if index is None else index
    request = _Request("server", name, dns, [], [ExtendedKeyUsageOID.SERVER_AUTH, IKE_INTERMEDIATE], days)
    return _issue(as_dir(pki_dir), ca, request, idx, {"sans": dns}, save=index is None, force=renew)


def issue_user(
    pki_dir: PkiDir | Path,
    ca: CA,
    user_id: str,
    email: str | None = None,
    name: str | None = None,
    days: int = 730,
    *,
    index: Index | None = None,
    durable: bool = True,
) -> IssueResult:
    """User certificate: CN=ID, SAN rfc822Name=email if given, EKU clientAuth.

    Unchanged if a valid certificate with the same e-mail SAN exists; otherwise (re-)issued, reusing
    the existing key. *name* (the full name) is recorded in the index when issuing. Refused for a
    revoked ID, and for an e-mail (any case) that another ID's valid certificate carries. With *index*
    (see :func:`svpn.access.pki.cert_index.bulk`) the index is not saved here; ``durable=False`` (bulk issuing)
    skips the per-file fsync, and the caller must sync before it saves the index.
    """
    validate_id(user_id, "ID")
    emails = [validate_email(email)] if email is not None else []
    full_name = validate_full_name(name) if name is not None else None
    validate_days(days)
    idx = Index.load(pki_dir) if index is None else index
    if emails:
        _refuse_held_email(idx, emails[0], user_id)
    extra = {"email": emails[0] if emails else None, "full_name": full_name}
    request = _Request("user", user_id, [], emails, [ExtendedKeyUsageOID.CLIENT_AUTH], days)
    return _issue(as_dir(pki_dir), ca, request, idx, extra, save=index is None, durable=durable)


def _refuse_held_email(index: Index, email: str, user_id: str) -> None:
    holder = index.email_holder(email, user_id)
    if holder is not None:
        raise SvpnError(
            f"email {email!r} already belongs to user {holder['name']!r} (certificate "
            f"{holder['serial']}, valid until {holder['not_after'][:10]}): two IDs with one e-mail "
            f"share an IKE identity and evict each other; revoke {holder['name']!r} first or give "
            "another e-mail"
        )


@dataclass(frozen=True)
class _Request:
    """One certificate asked for: its kind and name, SANs, extended key usages and validity."""

    kind: Kind
    name: str
    dns: list[str]
    emails: list[str]
    eku: list[ObjectIdentifier]
    days: int


def _issue(
    pki: PkiDir,
    ca: CA,
    request: _Request,
    index: Index,
    extra: dict[str, Any],
    *,
    save: bool,
    durable: bool = True,
    force: bool = False,
) -> IssueResult:
    kind, name = request.kind, request.name
    record = index.current(kind, name)
    cert_path, key_path = pki.cert_path(kind, name), pki.key_path(kind, name)
    if record is not None and record["status"] == "revoked":
        raise SvpnError(
            f"{kind} {name!r} is revoked (serial {record['serial']}, {record['revoked_at']}); "
            f"its key is not reused: issue a certificate under a new {'ID' if kind == 'user' else 'NAME'}"
        )
    if ca.unlock is not None:
        ca.unlock.before_write()  # once per CA load: an older CA key file, users' keys left in clear
    # The key is read (a user's opened) once: to judge the current certificate, then to sign a new one.
    key, in_clear = user_key(pki, ca.user_kek, name) if kind == "user" else (existing_key(key_path), False)
    if not force and still_good(pki, ca, record, kind, name, key, request.dns, request.emails):
        assert record is not None
        return IssueResult(kind, name, record["serial"], "unchanged", cert_path, key_path)

    new_key = key is None
    if key is None:
        key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(d) for d in request.dns] + [x509.RFC822Name(e) for e in request.emails]
    cert = _leaf_cert(ca, key, name, sans, request.eku, request.days, policies_for(kind))
    index.add(index_record(kind, name, cert, **extra))

    pki.ensure_dirs()
    if new_key or in_clear:  # a user's key is sealed (in_clear: a key from before keys were sealed)
        pem = ca.user_kek().seal(name, key) if kind == "user" else key_pem(key)
        write_new_key(key_path, pem, durable and not in_clear)
    atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644, durable=durable)
    if in_clear:
        os.sync()  # the sealed key is on disk before the clear one goes
        pki.clear_key_path(name).unlink(missing_ok=True)
    if save:
        index.save(pki)
    return IssueResult(kind, name, serial_hex(cert.serial_number), "issued", cert_path, key_path)


def still_good(
    pki: PkiDir,
    ca: CA,
    record: dict[str, Any] | None,
    kind: Kind,
    name: str,
    key: PrivateKey | None,
    dns: list[str],
    emails: list[str],
) -> bool:
    """True if the current certificate for *name* is ours, valid, matches its *key* (the one on file, None
    if there is none) and the request, and carries the policies of its kind (a user certificate without
    USER_CERT_POLICY is re-issued)."""
    if record is None or record["status"] != "valid":
        return False
    cert = load_cert(pki.cert_path(kind, name))
    if cert is None or key is None or serial_hex(cert.serial_number) != record["serial"]:
        return False
    if cert.not_valid_after_utc <= clock.now():
        return False
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    if public_der(key.public_key()) != public_der(cert.public_key()):
        return False
    if cert_policies(cert) != policies_for(kind):
        return False
    have_dns, have_emails = _sans(cert)
    return sorted(have_dns) == sorted(dns) and sorted(have_emails) == sorted(emails)


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return ext.get_values_for_type(x509.DNSName), ext.get_values_for_type(x509.RFC822Name)


def _leaf_cert(
    ca: CA,
    key: PrivateKey,
    cn: str,
    sans: list[x509.GeneralName],
    eku: list[ObjectIdentifier],
    days: int,
    policies: list[ObjectIdentifier],
) -> x509.Certificate:
    now = clock.now()
    not_after = min(now + dt.timedelta(days=days), ca.cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - clock.BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(signs_data=True, signs_certs=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if policies:
        builder = builder.add_extension(policies_extension(policies), critical=False)
    return builder.sign(ca.key, hash_for(ca.key))
