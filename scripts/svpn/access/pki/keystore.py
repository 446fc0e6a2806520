"""Secrets at rest: the CA key under scrypt, and the users' keys sealed under one key-encryption key.

**The CA key** (``ca/ca.key``) is standard encrypted PKCS#8 (RFC 5958 EncryptedPrivateKeyInfo, PEM
``ENCRYPTED PRIVATE KEY``): PBES2 (RFC 8018) with the scrypt KDF (RFC 7914 section 7, which puts the salt,
N, r, p and the key length in the file) and AES-256-CBC. :data:`CA_KDF` is N = 2^17, r = 8, p = 1
(128 MiB of memory, about 0.35 s on one core), the OWASP minimum for scrypt. :func:`kdf_info` reads the
parameters back from a key file. Python's ``cryptography`` reads such a key (``load_pem_private_key``);
the OpenSSL command line does not by default (its scrypt memory limit is 32 MiB).

**The users' keys** are sealed under one key-encryption key (KEK) per PKI, derived once per run from the
CA passphrase with scrypt (the same :data:`CA_KDF`) and a random salt kept in ``ca/kek.json`` (0600)::

    {"version": 1, "kdf": "scrypt", "n": 131072, "r": 8, "p": 1, "salt": BASE64, "check": BASE64}

scrypt yields 48 bytes: the first 32 are the KEK and the last 16 are ``check``, which tells a wrong
passphrase apart before anything is written (guessing the passphrase from it costs as much as from the
CA key itself). A sealed user key (``users/ID.key.enc``, 0600) is text::

    -----BEGIN SVPN SEALED USER KEY-----
    BASE64( "SVPNUK01" | KEK id (8 bytes) | nonce (12) | AES-256-GCM(KEK, nonce, PKCS#8 DER key, AAD) )
    -----END SVPN SEALED USER KEY-----

where AAD is the first 16 bytes followed by ``user:ID``: a file renamed to another ID does not open. The
KEK id (the first 8 bytes of SHA-256 over ``svpn-kek-id`` and the salt) names the KEK a file was sealed
under. Sealing or opening costs microseconds: a run derives the KEK once, whatever the number of users.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from svpn.core import der

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

KEK_FILE_VERSION = 1
SEALED_LABEL = "SVPN SEALED USER KEY"
_MAGIC = b"SVPNUK01"
_HEAD = len(_MAGIC) + 8  # magic + KEK id: the part of the AAD stored in the file
_NONCE = 12


@dataclass(frozen=True)
class ScryptParams:
    """scrypt's cost: N (CPU and memory, a power of two), r (block size), p (parallelism)."""

    n: int
    r: int = 8
    p: int = 1

    def derive(self, secret: bytes, salt: bytes, length: int = 32) -> bytes:
        return Scrypt(salt=salt, length=length, n=self.n, r=self.r, p=self.p).derive(secret)

    def at_least(self, other: ScryptParams) -> bool:
        return self.n >= other.n and self.r >= other.r and self.p >= other.p

    def __str__(self) -> str:
        log_n = int(math.log2(self.n)) if self.n > 0 and self.n & (self.n - 1) == 0 else None
        n = f"2^{log_n}" if log_n is not None else str(self.n)
        return f"scrypt N={n} r={self.r} p={self.p}"


DEFAULT_KDF = ScryptParams(2**17, 8, 1)
CA_KDF = DEFAULT_KDF  # what new CA key files and KEK files get (the unit tests lower it to stay quick)


class SealError(ValueError):
    """A sealed key that does not open: the message says why (never with key material)."""


# --------------------------------------------------------------------------- DER, just what PKCS#8 needs


_OIDS = {
    "1.2.840.113549.1.5.13": "pbes2",
    "1.2.840.113549.1.5.12": "pbkdf2",
    "1.3.6.1.4.1.11591.4.11": "scrypt",
    "2.16.840.1.101.3.4.1.42": "aes-256-cbc",
    "2.16.840.1.101.3.4.1.22": "aes-192-cbc",
    "2.16.840.1.101.3.4.1.2": "aes-128-cbc",
    "1.2.840.113549.2.7": "hmac-sha1",
    "1.2.840.113549.2.9": "hmac-sha256",
    "1.2.840.113549.2.10": "hmac-sha384",
    "1.2.840.113549.2.11": "hmac-sha512",
}
_OID_OF = {name: dotted for dotted, name in _OIDS.items()}


def _tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + body


def _seq(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _octets(data: bytes) -> bytes:
    return _tlv(0x04, data)


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _oid(name: str) -> bytes:
    arcs = [int(a) for a in _OID_OF[name].split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return _tlv(0x06, bytes(out))


def _oid_name(body: bytes) -> str:
    dotted = der.oid_text(body)
    return _OIDS.get(dotted, dotted)


def _pem(label: str, der: bytes) -> bytes:
    text = base64.b64encode(der).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return ("\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n").encode()


def _unpem(data: bytes, label: str) -> bytes:
    begin, end = f"-----BEGIN {label}-----".encode(), f"-----END {label}-----".encode()
    start = data.find(begin)
    stop = data.find(end, start + len(begin)) if start >= 0 else -1
    if start < 0 or stop < 0:
        raise ValueError(f"no {label} block")
    try:
        return base64.b64decode(b"".join(data[start + len(begin) : stop].split()), validate=True)
    except binascii.Error:
        raise ValueError(f"{label} block is not base64") from None


# --------------------------------------------------------------------------- the CA key: PKCS#8, scrypt


@dataclass(frozen=True)
class KdfInfo:
    """How an encrypted PKCS#8 key is protected, as read from the file (nothing decrypted)."""

    scheme: str  # "pbes2", or the OID of another scheme
    kdf: str = ""  # "scrypt", "pbkdf2" or an OID
    cipher: str = ""  # "aes-256-cbc", … or an OID
    salt_bytes: int = 0
    n: int | None = None  # scrypt
    r: int | None = None
    p: int | None = None
    iterations: int | None = None  # pbkdf2
    prf: str | None = None

    @property
    def scrypt(self) -> ScryptParams | None:
        if self.kdf != "scrypt" or self.n is None or self.r is None or self.p is None:
            return None
        return ScryptParams(self.n, self.r, self.p)

    def current(self, wanted: ScryptParams | None = None) -> bool:
        """True if the key is under scrypt at least as costly as *wanted* (default :data:`CA_KDF`)."""
        params = self.scrypt
        return params is not None and params.at_least(wanted or CA_KDF) and self.cipher == "aes-256-cbc"

    def __str__(self) -> str:
        if self.scrypt is not None:
            return f"{self.scrypt}, {self.cipher}"
        if self.kdf == "pbkdf2":
            return f"PBKDF2-{(self.prf or 'hmac-sha1').upper()} {self.iterations} rounds, {self.cipher}"
        return f"{self.scheme} {self.kdf} {self.cipher}".strip()


def kdf_info(pem: bytes) -> KdfInfo:
    """The KDF and cipher of an ``ENCRYPTED PRIVATE KEY`` PEM; ValueError if it is not one."""
    try:
        return _kdf_info(pem)
    except IndexError:
        raise ValueError("truncated PKCS#8 parameters") from None


def _kdf_info(pem: bytes) -> KdfInfo:
    (top,) = der.elements(_unpem(pem, "ENCRYPTED PRIVATE KEY"))
    algorithm, _data = der.elements(der.expect(top, 0x30))
    scheme_oid, *scheme_params = der.elements(der.expect(algorithm, 0x30))
    scheme = _oid_name(der.expect(scheme_oid, 0x06))
    if scheme != "pbes2":
        return KdfInfo(scheme)
    kdf_alg, enc_alg = der.elements(der.expect(scheme_params[0], 0x30))
    kdf_oid, kdf_params = der.elements(der.expect(kdf_alg, 0x30))
    cipher_oid, _iv = der.elements(der.expect(enc_alg, 0x30))
    kdf, cipher = _oid_name(der.expect(kdf_oid, 0x06)), _oid_name(der.expect(cipher_oid, 0x06))
    fields = der.elements(der.expect(kdf_params, 0x30))
    salt = der.expect(fields[0], 0x04)
    numbers = [int.from_bytes(der.expect(f, 0x02), "big") for f in fields[1:] if f[0] == 0x02]
    if kdf == "scrypt":
        return KdfInfo(scheme, kdf, cipher, len(salt), n=numbers[0], r=numbers[1], p=numbers[2])
    if kdf == "pbkdf2":
        prf = "hmac-sha1"  # the default when the field is absent
        for tag, body in fields[1:]:
            if tag == 0x30:
                prf = _oid_name(der.expect(der.elements(body)[0], 0x06))
        return KdfInfo(scheme, kdf, cipher, len(salt), iterations=numbers[0], prf=prf)
    return KdfInfo(scheme, kdf, cipher, len(salt))


def encrypt_pkcs8(key: PrivateKey, passphrase: bytes, params: ScryptParams | None = None) -> bytes:
    """*key* as encrypted PKCS#8 PEM: PBES2, scrypt (*params*, default :data:`CA_KDF`), AES-256-CBC.

    The result is read back with ``cryptography`` before it is returned: a file that would not open with
    *passphrase* is never written.
    """
    params = params or CA_KDF
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt, iv = os.urandom(16), os.urandom(16)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(params.derive(passphrase, salt)), modes.CBC(iv)).encryptor()
    body = encryptor.update(padder.update(der) + padder.finalize()) + encryptor.finalize()
    kdf = _seq(_oid("scrypt"), _seq(_octets(salt), _int(params.n), _int(params.r), _int(params.p), _int(32)))
    scheme = _seq(_oid("pbes2"), _seq(kdf, _seq(_oid("aes-256-cbc"), _octets(iv))))
    pem = _pem("ENCRYPTED PRIVATE KEY", _seq(scheme, _octets(body)))
    again = serialization.load_pem_private_key(pem, password=passphrase)
    if again.public_key() != key.public_key():  # pragma: no cover - a broken encoder, not an input
        raise AssertionError("the encrypted CA key does not read back as the same key")
    return pem


# --------------------------------------------------------------------------- the users' KEK


@dataclass(frozen=True)
class Kek:
    """The key-encryption key of one PKI's user keys (picklable: sent once to each worker)."""

    key: bytes = field(repr=False)
    id: bytes

    def seal(self, user_id: str, key: PrivateKey) -> bytes:
        der = key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        head, nonce = _MAGIC + self.id, os.urandom(_NONCE)
        return _pem(SEALED_LABEL, head + nonce + AESGCM(self.key).encrypt(nonce, der, _aad(head, user_id)))

    def open(self, user_id: str, data: bytes) -> PrivateKey:
        """The key sealed in *data* for *user_id*; :class:`SealError` says why it does not open."""
        try:
            raw = _unpem(data, SEALED_LABEL)
        except ValueError:
            raise SealError(f"is not a sealed user key (no {SEALED_LABEL} block)") from None
        if len(raw) < _HEAD + _NONCE + 16 or not raw.startswith(_MAGIC):
            raise SealError("is not a sealed user key of a format this svpn knows")
        head = raw[:_HEAD]
        if head[len(_MAGIC) :] != self.id:
            raise SealError(
                f"was sealed under another key-encryption key (id {head[len(_MAGIC) :].hex()}, this PKI's is "
                f"{self.id.hex()})"
            )
        nonce, body = raw[_HEAD : _HEAD + _NONCE], raw[_HEAD + _NONCE :]
        try:
            der = AESGCM(self.key).decrypt(nonce, body, _aad(head, user_id))
        except InvalidTag:
            raise SealError(
                f"does not open: it was altered, or sealed for another ID than {user_id!r}"
            ) from None
        key = serialization.load_der_private_key(der, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise SealError("holds a key that is neither ECDSA nor RSA")
        return key


def _aad(head: bytes, user_id: str) -> bytes:
    return head + b"user:" + user_id.encode()


def _kek_id(salt: bytes) -> bytes:
    return hashlib.sha256(b"svpn-kek-id" + salt).digest()[:8]


def _derive_kek(passphrase: bytes, salt: bytes, params: ScryptParams) -> tuple[Kek, bytes]:
    out = params.derive(passphrase, salt, 48)
    return Kek(out[:32], _kek_id(salt)), out[32:]


def new_kek(passphrase: bytes, params: ScryptParams | None = None) -> tuple[Kek, bytes]:
    """A KEK with a new random salt, and the ``kek.json`` text that finds it again from *passphrase*."""
    params = params or CA_KDF
    salt = os.urandom(16)
    kek, check = _derive_kek(passphrase, salt, params)
    data = {
        "version": KEK_FILE_VERSION,
        "kdf": "scrypt",
        "n": params.n,
        "r": params.r,
        "p": params.p,
        "salt": base64.b64encode(salt).decode(),
        "check": base64.b64encode(check).decode(),
    }
    return kek, (json.dumps(data, indent=2) + "\n").encode()


def kek_params(data: bytes) -> tuple[ScryptParams, bytes, bytes]:
    """(scrypt parameters, salt, check) of a ``kek.json``; ValueError (saying what) if it is malformed."""
    try:
        doc: Any = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise ValueError("not JSON") from None
    if not isinstance(doc, dict) or doc.get("version") != KEK_FILE_VERSION or doc.get("kdf") != "scrypt":
        raise ValueError(f'expected {{"version": {KEK_FILE_VERSION}, "kdf": "scrypt", …}}')
    numbers = [doc.get(k) for k in ("n", "r", "p")]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in numbers):
        raise ValueError("n, r and p must be positive integers")
    try:
        salt, check = (
            base64.b64decode(doc["salt"], validate=True),
            base64.b64decode(doc["check"], validate=True),
        )
    except (KeyError, TypeError, binascii.Error):
        raise ValueError("salt and check must be base64") from None
    if len(salt) < 16 or len(check) != 16:
        raise ValueError("salt must be 16 bytes or more and check 16 bytes")
    return ScryptParams(*numbers), salt, check  # type: ignore[arg-type]


def open_kek(data: bytes, passphrase: bytes) -> Kek | None:
    """The KEK that ``kek.json`` *data* describes, or None if *passphrase* is not the one it was made with."""
    params, salt, check = kek_params(data)
    kek, got = _derive_kek(passphrase, salt, params)
    return kek if hmac.compare_digest(got, check) else None
