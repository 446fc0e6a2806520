"""Keys and certificates as objects: making a key, the CA certificate and the extensions svpn puts in
certificates, re-signing one with other policies, and the small readers the PKI modules share (a PEM
certificate file, a public key's DER, the subject CN, a serial's hex). Nothing here touches the index.
Pure but for :func:`load_cert`; imports svpn.access.pki.keystore and cert_policy, and svpn.core."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

from svpn.access.pki import keystore
from svpn.access.pki.cert_policy import policies_extension
from svpn.core.errors import SvpnError

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

KEY_TYPES = ("ecdsa384", "ecdsa256", "rsa3072", "rsa4096")


def generate_key(key_type: str) -> PrivateKey:
    """A new private key of *key_type* (one of :data:`KEY_TYPES`)."""
    if key_type == "ecdsa384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "ecdsa256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type in ("rsa3072", "rsa4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    raise SvpnError(f"key type {key_type!r} is not valid: one of {', '.join(KEY_TYPES)}")


def hash_for(key: PrivateKey) -> hashes.HashAlgorithm:
    """The digest a signature by *key* uses: SHA-384 for P-384 and larger curves, else SHA-256."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM: under scrypt (:func:`svpn.access.pki.keystore.encrypt_pkcs8`) with *passphrase*, else in
    clear."""
    if passphrase:
        return keystore.encrypt_pkcs8(key, passphrase)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_der(key: Any) -> bytes:
    """A public key's SubjectPublicKeyInfo DER: compare keys by it."""
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def common_name(name: x509.Name) -> str:
    """The first CN of *name* ("" without one)."""
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def load_cert(path: Path) -> x509.Certificate | None:
    """The PEM certificate in *path*; None if it is missing or unreadable."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def key_usage(*, signs_data: bool, signs_certs: bool) -> x509.KeyUsage:
    """keyUsage: digitalSignature for a key that signs IKE AUTH payloads, keyCertSign + cRLSign for a CA."""
    return x509.KeyUsage(
        digital_signature=signs_data,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certs,
        crl_sign=signs_certs,
        encipher_only=False,
        decipher_only=False,
    )


def ca_certificate(
    key: PrivateKey,
    subject: x509.Name,
    not_before: dt.datetime,
    not_after: dt.datetime,
    *,
    signs_data: bool = False,
    policies: list[ObjectIdentifier] | None = None,
) -> x509.Certificate:
    """A self-signed CA certificate (pathlen 0: it issues end-entity certificates only), listing the
    certificate *policies* its certificates may carry (strongSwan ignores any other)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(signs_data=signs_data, signs_certs=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if policies:
        builder = builder.add_extension(policies_extension(policies), critical=False)
    return builder.sign(key, hash_for(key))


def with_policies(
    old: x509.Certificate, policies: list[ObjectIdentifier], signer: PrivateKey
) -> x509.Certificate:
    """*old* re-signed by *signer* with these certificate policies (none: no extension) and a new serial;
    subject, issuer, key, validity and every other extension stay as they were."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(old.issuer)
        .public_key(old.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(old.not_valid_before_utc)
        .not_valid_after(old.not_valid_after_utc)
    )
    for ext in old.extensions:
        if not isinstance(ext.value, x509.CertificatePolicies):
            builder = builder.add_extension(ext.value, ext.critical)
    if policies:
        builder = builder.add_extension(policies_extension(policies), critical=False)
    return builder.sign(signer, hash_for(signer))


def serial_hex(serial: int) -> str:
    """A serial number as the index keeps it: lower-case hex."""
    return f"{serial:x}"
