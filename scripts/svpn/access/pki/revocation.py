"""Revocation and the CRL: revoke a user's or a server's certificates (every one issued under that name),
and (re)write ``crl.pem``, signed by the CA and numbered from the index. Imports svpn.access (ca,
cert_index, certs, pkidir, validation, clock) and svpn.core."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from svpn.access.pki import clock
from svpn.access.pki.ca import CA
from svpn.access.pki.cert_index import Index
from svpn.access.pki.certs import hash_for
from svpn.access.pki.pkidir import Kind, PkiDir, as_dir
from svpn.access.pki.validation import validate_days, validate_id
from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write


def build_crl(ca: CA, index: Index, days: int = 7) -> x509.CertificateRevocationList:
    """A CRL with every revoked serial in *index*, numbered ``index.crl_number``."""
    now = clock.now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - clock.BACKDATE)
        .next_update(now + dt.timedelta(days=days))
        .add_extension(x509.CRLNumber(index.crl_number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    for record in index.certs:
        if record["status"] == "revoked" and record["kind"] != "ca":
            revoked = (
                x509.RevokedCertificateBuilder()
                .serial_number(int(record["serial"], 16))
                .revocation_date(clock.parse_iso(record["revoked_at"]))
                .build()
            )
            builder = builder.add_revoked_certificate(revoked)
    return builder.sign(ca.key, hash_for(ca.key))


def write_crl(pki_dir: PkiDir | Path, ca: CA, days: int = 7, *, index: Index | None = None) -> Path:
    """(Re)write ``crl.pem`` with the next CRL number; saves the index (the number is consumed). During a
    CA rollover the previous CA's CRL (``crl-previous.pem``) is re-signed too, with the same entries: every
    revoked serial goes in both (serials are random 159-bit numbers: an entry the other CA never issued
    matches nothing), so a user revoked after a re-issue is refused with either certificate."""
    validate_days(days)
    pki = as_dir(pki_dir)
    if ca.unlock is not None:
        ca.unlock.before_write()  # once per CA load: an older CA key file, users' keys left in clear
    idx = Index.load(pki) if index is None else index
    idx.crl_number += 1
    idx.dirty = True
    crl = build_crl(ca, idx, days)
    pki.ensure_dirs()
    idx.save(pki)
    atomic_write(pki.crl, crl.public_bytes(serialization.Encoding.PEM), 0o644)
    if ca.previous is not None:
        previous = build_crl(ca.previous, idx, days)
        atomic_write(pki.previous_crl, previous.public_bytes(serialization.Encoding.PEM), 0o644)
    return pki.crl


def revoke(
    pki_dir: PkiDir | Path, ca: CA, name: str, kind: Kind = "user", crl_days: int = 7
) -> Literal["revoked", "unchanged"]:
    """Revoke the current certificate of user (or server) *name* and every superseded one (same key),
    then rewrite the CRL. ``"unchanged"`` if it was already revoked."""
    validate_id(name, "ID" if kind == "user" else "NAME")
    pki = as_dir(pki_dir)
    index = Index.load(pki)
    record = index.current(kind, name)
    if record is None:
        raise SvpnError(
            f"{'ID' if kind == 'user' else 'NAME'} {name!r} is unknown: no {kind} certificate "
            f"with that name in {pki.index}"
        )
    if record["status"] == "revoked":
        return "unchanged"
    mark_revoked((r for r in index.certs if r["kind"] == kind and r["name"] == name), clock.now())
    write_crl(pki, ca, crl_days, index=index)
    return "revoked"


def mark_revoked(records: Iterable[dict[str, Any]], when: dt.datetime) -> None:
    """Revoke at *when* each of *records* not revoked yet: every certificate of a name goes (a superseded
    one has the same key). The rule of :func:`revoke` and of a users sync, which writes the CRL once."""
    stamp = clock.iso(when)
    for record in records:
        if record["status"] != "revoked":
            record["status"] = "revoked"
            record["revoked_at"] = stamp
