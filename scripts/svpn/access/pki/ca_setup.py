"""Creating the CA (``svpn pki init``: key, self-signed certificate, the users' KEK file, an empty CRL) and
bringing an older CA certificate up to date (``svpn pki ca-policy``: re-signed to allow the user
certificate policy). Imports svpn.access (ca, cert_index, cert_policy, certs, issuing, keystore, pkidir,
revocation, user_keys, validation, clock) and svpn.core.

A new passphrase has at least :data:`svpn.access.pki.validation.MIN_PASSPHRASE` characters; an older CA's
shorter one keeps working. The CA key is never overwritten (only re-encrypted, with the same passphrase, to
move it to the current KDF: :class:`svpn.access.pki.ca.Unlock`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from svpn.access.pki import clock

from svpn.access.pki import keystore
from svpn.access.pki.ca import CA
from svpn.access.pki.cert_index import Index, index_record
from svpn.access.pki.cert_policy import USER_CERT_POLICY, cert_policies, policies_for
from svpn.access.pki.certs import (
    KEY_TYPES,
    ca_certificate,
    common_name,
    generate_key,
    key_pem,
    load_cert,
    public_der,
    serial_hex,
    with_policies,
)
from svpn.access.pki.issuing import IssueResult
from svpn.access.pki.pkidir import PkiDir, as_dir
from svpn.access.pki.revocation import write_crl
from svpn.access.pki.user_keys import write_new_key
from svpn.access.pki.validation import validate_days, validate_passphrase
from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write


def init_ca(
    pki_dir: PkiDir | Path,
    name: str,
    passphrase: str | None,
    key_type: str = "ecdsa384",
    days: int = 3650,
) -> IssueResult:
    """Create the CA (key encrypted with *passphrase*); refuses if a CA (cert or key) exists."""
    pki = as_dir(pki_dir)
    for existing in (pki.ca_cert, pki.ca_key, pki.kek):
        if existing.exists():
            raise SvpnError(f"a CA already exists in {pki.path}: {existing} (refusing to overwrite it)")
    cn = name.strip()
    if not cn or len(cn) > 64 or not cn.isprintable():
        raise SvpnError(f"name {name!r} is not valid: the CA name must be 1-64 printable characters")
    if key_type not in KEY_TYPES:
        raise SvpnError(f"key type {key_type!r} is not valid: one of {', '.join(KEY_TYPES)}")
    validate_days(days)
    secret = validate_passphrase(passphrase, new=True)

    key = generate_key(key_type)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = clock.now()
    not_after = now + dt.timedelta(days=days)
    cert = ca_certificate(key, subject, now - clock.BACKDATE, not_after, policies=policies_for("ca"))
    pem = key_pem(key, secret)
    _kek, kek_file = keystore.new_kek(secret)
    index = Index()
    index.add(index_record("ca", cn, cert))

    pki.ensure_dirs()
    write_new_key(pki.ca_key, pem)
    atomic_write(pki.kek, kek_file, 0o600, overwrite=False)
    atomic_write(pki.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644, overwrite=False)
    index.save(pki)
    # An empty CRL from day one: concentrators always have one to load, and revocation only updates it.
    write_crl(pki, CA(cert, key), index=index)
    return IssueResult("ca", cn, serial_hex(cert.serial_number), "issued", pki.ca_cert, pki.ca_key)


def ca_allows_user_policy(pki_dir: PkiDir | Path) -> bool:
    """True if the CA certificate lists USER_CERT_POLICY. Until it does, strongSwan ignores the policy on
    user certificates ("not allowed by trustchain") and a concentrator requiring it refuses every user."""
    pki = as_dir(pki_dir)
    cert = load_cert(pki.ca_cert)
    if cert is None:
        raise SvpnError(f"no readable CA certificate {pki.ca_cert}: run `svpn pki init` first")
    return USER_CERT_POLICY in cert_policies(cert)


def add_ca_policy(pki_dir: PkiDir | Path, ca: CA) -> Literal["updated", "unchanged"]:
    """Make the CA certificate list USER_CERT_POLICY (a CA made before the policy existed): re-signed with
    the same key, subject, validity and extensions, and a new serial. Everything the CA issued stays valid,
    and clients keep trusting the concentrators with the old CA certificate; the concentrators need the new
    one (ca/ca.crt) before they require the policy."""
    pki = as_dir(pki_dir)
    old = load_cert(pki.ca_cert) or ca.cert  # as it is now: another run may have changed it
    if USER_CERT_POLICY in cert_policies(old):
        return "unchanged"
    if public_der(old.public_key()) != public_der(ca.key.public_key()):
        raise SvpnError(f"CA key does not match the CA certificate {pki.ca_cert}")
    cert = with_policies(old, [*cert_policies(old), USER_CERT_POLICY], ca.key)
    index = Index.load(pki)
    index.add(index_record("ca", common_name(cert.subject), cert))
    atomic_write(pki.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    index.save(pki)
    return "updated"
