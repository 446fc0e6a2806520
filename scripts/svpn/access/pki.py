"""A small private CA for the farm: the CA, concentrator (server) and user certificates, the CRL.

Layout under the PKI directory (default ``pki/`` at the repository root; directories are 0700)::

    ca/ca.crt           CA certificate (PEM, self-signed)
    ca/ca.key           CA private key (PKCS#8 PEM, PBES2 scrypt + AES-256-CBC under the CA passphrase, 0600)
    ca/kek.json         salt and scrypt parameters of the key that seals the users' keys (no secret, 0600)
    servers/NAME.crt    concentrator certificate (PEM)
    servers/NAME.key    concentrator private key (PKCS#8 PEM, unencrypted: deployed to the node, 0600)
    users/ID.crt        user certificate (PEM)
    users/ID.key.enc    user private key, sealed (AES-256-GCM under the users' key-encryption key, 0600)
    index.json          the issuance record (see below)
    crl.pem             the CRL (PEM), signed by the CA

The formats of ``ca.key``, ``kek.json`` and ``ID.key.enc`` are described in :mod:`svpn.access.keystore`. A
user's
key is never in clear on disk: a run derives the key-encryption key (KEK) once from the CA passphrase and
seals or opens each user's key with it. PKIs made before keys were sealed are moved on the first write
after a CA load (:meth:`Unlock.before_write`): a CA key under an older KDF is re-encrypted under
:data:`svpn.access.keystore.CA_KDF` (same passphrase, atomically), and every ``users/ID.key`` left in clear is
sealed into ``users/ID.key.enc`` and removed.

``index.json`` is ``{"version": 1, "crl_number": N, "certs": [...]}``; each record has ``serial``
(lower-case hex), ``kind`` (``ca``/``server``/``user``), ``name`` (the CA name, the server NAME or the
user ID, which is also the subject CN), ``not_after`` (ISO 8601, UTC), ``status`` (``valid``,
``revoked``, or ``superseded`` once a newer certificate was issued for the same name with the same
key) and ``revoked_at`` (ISO 8601 or null); user records also keep ``email`` and ``full_name``. Records
keep ``identities`` (every IKE identity the certificate carries, as strongSwan prints it: the certificate
file is overwritten by the next one) and ``policies`` (its certificate policy OIDs; user certificates, and
the CA, carry :data:`USER_CERT_POLICY`); older records have neither.

Rules: every file is written atomically (:func:`svpn.core.files.atomic_write`); private keys are never
overwritten (the CA key is only re-encrypted, with the same passphrase, to move it to the current KDF);
everything is validated, and the CA key loaded and decrypted, before anything is written. The CA
passphrase is never printed nor stored. A new passphrase has at least :data:`MIN_PASSPHRASE` characters;
an older CA's shorter one keeps working.

Bulk issuing: load the :class:`Index` once with :func:`bulk` and pass it to :func:`issue_user`::

    ca = load_ca(pki_dir, passphrase)
    with bulk(pki_dir) as index:
        for uid in ids:
            issue_user(pki_dir, ca, uid, index=index)
"""

from __future__ import annotations

import datetime as dt
import fcntl
import ipaddress
import json
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from svpn.access import keystore
from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write
from svpn.farm.identities import cert_identities, strongswan_oid_text, unique

Kind = Literal["ca", "server", "user"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

KEY_TYPES = ("ecdsa384", "ecdsa256", "rsa3072", "rsa4096")
ID_RULE = "1-64 characters: a-z 0-9 . _ - (lower case), starting with a letter or digit"
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSPHRASE = 12  # for a new passphrase (init); an older CA's shorter one still opens it
IKE_INTERMEDIATE = ObjectIdentifier("1.3.6.1.5.5.8.2.2")
# The certificate policy of user certificates alone: "a user is their certificate". Concentrators require it
# (swanctl `remote { cert_policy }`), so no other certificate of the CA (a concentrator's, say) is accepted
# as a user. Self-allocated under the UUID arc (X.667; UUID f019e007-37da-49a2-a356-40a53d4b380a, generated
# once): never change it, every user certificate carries it. The CA lists it too: strongSwan accepts a
# policy only when every CA certificate up to the trust anchor allows it. swanctl.conf needs the policy as
# strongSwan writes it (svpn.farm.identities.strongswan_oid_text: the UUID arc wraps to 32 bits); the
# Ansible
# filter svpn_cert_policy gives that text.
USER_CERT_POLICY = ObjectIdentifier("2.25.319149070241477104863397707334227277834")
INDEX_VERSION = 1
_DNS_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_EMAIL_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_BACKDATE = dt.timedelta(minutes=5)


# --------------------------------------------------------------------------- paths


class PkiDir:
    """The paths of one PKI directory (nothing is read or created by the constructor)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"PkiDir({str(self.path)!r})"

    @property
    def ca_cert(self) -> Path:
        return self.path / "ca" / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.path / "ca" / "ca.key"

    @property
    def index(self) -> Path:
        return self.path / "index.json"

    @property
    def crl(self) -> Path:
        return self.path / "crl.pem"

    def cert_path(self, kind: Kind, name: str) -> Path:
        if kind == "ca":
            return self.ca_cert
        return self.path / _subdir(kind) / f"{name}.crt"

    @property
    def kek(self) -> Path:
        return self.path / "ca" / "kek.json"

    def key_path(self, kind: Kind, name: str) -> Path:
        """The key file: PEM for the CA (encrypted) and servers (clear), sealed for users (``ID.key.enc``)."""
        if kind == "ca":
            return self.ca_key
        if kind == "user":
            return self.path / "users" / f"{name}.key.enc"
        return self.path / _subdir(kind) / f"{name}.key"

    def clear_key_path(self, user_id: str) -> Path:
        """Where a user's key lay in clear before keys were sealed: read, sealed and removed on a write."""
        return self.path / "users" / f"{user_id}.key"

    def ensure_dirs(self) -> None:
        """Create the directory tree with mode 0700 (only called once everything is validated)."""
        for sub in (self.path, self.path / "ca", self.path / "servers", self.path / "users"):
            sub.mkdir(mode=0o700, parents=True, exist_ok=True)
            sub.chmod(0o700)


def _subdir(kind: Kind) -> str:
    return {"server": "servers", "user": "users"}[kind]


def _as_dir(pki_dir: PkiDir | Path | str) -> PkiDir:
    return pki_dir if isinstance(pki_dir, PkiDir) else PkiDir(pki_dir)


# --------------------------------------------------------------------------- validation


def validate_id(value: str, field_name: str = "ID") -> str:
    if not ID_RE.match(value):
        raise SvpnError(f"{field_name} {value!r} is not valid: {ID_RULE}")
    return value


def validate_dns_name(value: str, field_name: str = "SAN") -> str:
    """A DNS name (lower-cased); an optional leading ``*.`` wildcard label is allowed."""
    name = value.strip().lower()
    why = ""
    try:
        ipaddress.ip_address(name)
        why = " (an IP address is not a DNS name)"
    except ValueError:
        pass
    labels = name[2:].split(".") if name.startswith("*.") else name.split(".")
    if why or not name or len(name) > 253 or not all(_DNS_LABEL_RE.match(label) for label in labels):
        raise SvpnError(
            f"{field_name} {value!r} is not a valid DNS name{why}: labels of 1-63 characters "
            "a-z 0-9 -, not starting or ending with '-', separated by '.', 253 characters at most"
        )
    return name


def validate_email(value: str, field_name: str = "email") -> str:
    rule = "expected local@domain.tld (ASCII, domain a valid DNS name with a dot)"
    local, sep, domain = value.partition("@")
    if not sep or len(local) > 64 or not _EMAIL_LOCAL_RE.match(local) or "." not in domain:
        raise SvpnError(f"{field_name} {value!r} is not a valid e-mail address: {rule}")
    try:
        domain = validate_dns_name(domain, field_name)
    except SvpnError:
        raise SvpnError(f"{field_name} {value!r} is not a valid e-mail address: {rule}") from None
    if domain.startswith("*."):
        raise SvpnError(f"{field_name} {value!r} is not a valid e-mail address: {rule}")
    return f"{local}@{domain}"


def validate_full_name(value: str) -> str:
    name = value.strip()
    if not name or len(name) > 128 or not name.isprintable():
        raise SvpnError(f"name {value!r} is not valid: 1-128 printable characters")
    return name


def validate_days(value: int, field_name: str = "days") -> int:
    if value < 1 or value > 36500:
        raise SvpnError(f"{field_name} {value!r} is not valid: a whole number of days from 1 to 36500")
    return value


def validate_passphrase(passphrase: str | None, *, new: bool = False) -> bytes:
    if not passphrase:
        raise SvpnError("CA passphrase is missing: set SVPN_CA_PASSPHRASE or pass --passphrase-file FILE")
    if new and len(passphrase) < MIN_PASSPHRASE:
        raise SvpnError(
            f"CA passphrase is too short ({len(passphrase)} characters): a new passphrase needs at least "
            f"{MIN_PASSPHRASE} characters"
        )
    return passphrase.encode()


def read_passphrase_file(path: Path) -> str:
    """The passphrase in *path*, without one trailing newline."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SvpnError(f"passphrase file {str(path)!r} cannot be read: {err.__class__.__name__}") from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


# --------------------------------------------------------------------------- index


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _serial_hex(serial: int) -> str:
    return f"{serial:x}"


@dataclass
class Index:
    """``index.json`` in memory: load once, change, :meth:`save` once."""

    certs: list[dict[str, Any]] = field(default_factory=list)
    crl_number: int = 0
    dirty: bool = False

    @classmethod
    def load(cls, pki_dir: PkiDir | Path) -> Index:
        path = _as_dir(pki_dir).index
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            certs = data["certs"]
            crl_number = int(data.get("crl_number", 0))
            if not isinstance(certs, list) or not all(isinstance(c, dict) for c in certs):
                raise TypeError("certs")
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise SvpnError(
                f"index {str(path)!r} is unreadable or malformed ({err.__class__.__name__})"
            ) from None
        return cls(certs=certs, crl_number=crl_number)

    def to_json(self) -> str:
        data = {"version": INDEX_VERSION, "crl_number": self.crl_number, "certs": self.certs}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def save(self, pki_dir: PkiDir | Path) -> None:
        atomic_write(_as_dir(pki_dir).index, self.to_json(), 0o600)
        self.dirty = False

    def current(self, kind: Kind, name: str) -> dict[str, Any] | None:
        """The newest record for *kind*/*name* that is not superseded."""
        for record in reversed(self.certs):
            if record["kind"] == kind and record["name"] == name and record["status"] != "superseded":
                return record
        return None

    def email_holder(self, email: str, other_than: str) -> dict[str, Any] | None:
        """The valid, unexpired user record of an ID other than *other_than* whose e-mail is *email*
        (ignoring case), or None: two IDs with one e-mail would share an IKE identity."""
        wanted, now = email.lower(), _now()
        for record in self.certs:
            held = record["kind"] == "user" and record["name"] != other_than and held_email(record, now)
            if held == wanted:
                return record
        return None

    def add(self, record: dict[str, Any]) -> None:
        for old in self.certs:
            if old["kind"] == record["kind"] and old["name"] == record["name"] and old["status"] == "valid":
                old["status"] = "superseded"
        self.certs.append(record)
        self.dirty = True


def held_email(record: Mapping[str, Any], now: dt.datetime) -> str | None:
    """The e-mail (lower case) that a user record's certificate still holds as an IKE identity: valid and
    not expired; else None. One ID per such e-mail (:meth:`Index.email_holder`, the roster's diff)."""
    email = record.get("email")
    if not email or record["status"] != "valid" or _parse_iso(str(record["not_after"])) <= now:
        return None
    return str(email).lower()


def _record(kind: Kind, name: str, cert: x509.Certificate, **extra: Any) -> dict[str, Any]:
    return {
        "serial": _serial_hex(cert.serial_number),
        "kind": kind,
        "name": name,
        "issued_at": _iso(_now()),
        "not_after": _iso(cert.not_valid_after_utc),
        "status": "valid",
        "revoked_at": None,
        # What this certificate lets its holder authenticate as, and its policies: the certificate file is
        # overwritten by the next one, the index keeps them (svpn pki identities, users sync).
        "identities": cert_identities(cert),
        "policies": [p.dotted_string for p in cert_policies(cert)],
        **extra,
    }


@contextmanager
def locked(pki_dir: PkiDir | Path, timeout: float = 120.0, busy_message: str | None = None) -> Iterator[None]:
    """Hold the PKI directory's exclusive lock: writers take turns (a playbook issues the certificates of
    many hosts at once, and each issue reads, changes and saves index.json). The lock is a flock on the
    directory itself: no file is left behind, and it dies with the process. ``timeout=0`` does not wait;
    *busy_message* replaces the default error when the lock stays taken."""
    path = _as_dir(pki_dir).path
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise SvpnError(
                        busy_message or f"{path} is locked by another svpn process for over {timeout:.0f} s"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


@contextmanager
def bulk(pki_dir: PkiDir | Path) -> Iterator[Index]:
    """Load the index once; save it once at the end (also after an error, to record what was issued)."""
    index = Index.load(pki_dir)
    try:
        yield index
    finally:
        if index.dirty:
            index.save(pki_dir)


# --------------------------------------------------------------------------- keys and the CA


class CA(NamedTuple):
    cert: x509.Certificate
    key: PrivateKey
    unlock: Unlock | None = None  # from load_ca: the users' KEK; the CA key file's move to the current KDF

    def user_kek(self) -> keystore.Kek:
        """The key that seals the users' keys (derived from the CA passphrase on first use, once)."""
        if self.unlock is None:
            raise SvpnError(
                "the users' keys are sealed under a key derived from the CA passphrase: load the CA with "
                "its passphrase (svpn.access.pki.load_ca) to issue user certificates"
            )
        return self.unlock.kek()


class Unlock:
    """What a CA load keeps for the writes that follow (never written anywhere): the passphrase, until
    the users' key-encryption key is derived (on first use, once per run) and the CA key file is at the
    current KDF.

    :meth:`before_write` runs once, under the PKI's lock, before the first write after the load: a CA key
    under an older KDF is re-encrypted under :data:`svpn.access.keystore.CA_KDF` (same passphrase,
    atomically),
    and users' keys left in clear are sealed (:func:`seal_clear_user_keys`). Worker processes get
    :meth:`with_kek`: the KEK, never the passphrase, and nothing to move.
    """

    def __init__(
        self,
        pki: PkiDir,
        passphrase: bytes | None,
        *,
        kek: keystore.Kek | None = None,
        ca_key: PrivateKey | None = None,
        old_ca_pem: bytes | None = None,
    ) -> None:
        self.pki = pki
        self._passphrase = passphrase
        self._kek = kek
        self._ca_key = ca_key
        self._old_ca_pem = old_ca_pem
        self._pending = passphrase is not None

    def __repr__(self) -> str:
        return f"Unlock({self.pki!r})"

    @classmethod
    def with_kek(cls, pki: PkiDir | Path, kek: keystore.Kek) -> Unlock:
        return cls(_as_dir(pki), None, kek=kek)

    def kek(self) -> keystore.Kek:
        if self._kek is None:
            if self._passphrase is None:  # pragma: no cover - with_kek always has one
                raise SvpnError("the users' key-encryption key is not available in this process")
            self._kek = _load_kek(self.pki, self._passphrase, verified=True)
        return self._kek

    def before_write(self) -> None:
        if not self._pending:
            return
        self._pending = False
        if self._old_ca_pem is not None and self._ca_key is not None and self._passphrase is not None:
            _reencrypt_ca_key(self.pki, self._ca_key, self._passphrase, self._old_ca_pem)
            self._old_ca_pem = None
        if _clear_user_key_ids(self.pki):
            seal_clear_user_keys(self.pki, self.kek())


@dataclass(frozen=True)
class IssueResult:
    kind: Kind
    name: str
    serial: str
    action: Literal["issued", "unchanged"]
    cert_path: Path
    key_path: Path

    def __str__(self) -> str:
        return f"{self.action}: {self.kind} {self.name}"


def generate_key(key_type: str) -> PrivateKey:
    if key_type == "ecdsa384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "ecdsa256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type in ("rsa3072", "rsa4096"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    raise SvpnError(f"key type {key_type!r} is not valid: one of {', '.join(KEY_TYPES)}")


def _hash_for(key: PrivateKey) -> hashes.HashAlgorithm:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size >= 384:
        return hashes.SHA384()
    return hashes.SHA256()


def _key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS#8 PEM: under scrypt (:func:`svpn.access.keystore.encrypt_pkcs8`) with *passphrase*, else in
    clear."""
    if passphrase:
        return keystore.encrypt_pkcs8(key, passphrase)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _public_der(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def _load_cert(path: Path) -> x509.Certificate | None:
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
        builder = builder.add_extension(_policies_extension(policies), critical=False)
    return builder.sign(key, _hash_for(key))


def _policies_extension(policies: list[ObjectIdentifier]) -> x509.CertificatePolicies:
    return x509.CertificatePolicies([x509.PolicyInformation(oid, None) for oid in policies])


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
        builder = builder.add_extension(_policies_extension(policies), critical=False)
    return builder.sign(signer, _hash_for(signer))


def cert_policies(cert: x509.Certificate) -> list[ObjectIdentifier]:
    """The certificate policy OIDs of *cert* (none without the extension)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return []
    return [info.policy_identifier for info in ext]


def _policies_for(kind: Kind) -> list[ObjectIdentifier]:
    """The policies a certificate of *kind* carries: USER_CERT_POLICY on user certificates (and the CA,
    which must allow it), none on servers."""
    return [] if kind == "server" else [USER_CERT_POLICY]


def init_ca(
    pki_dir: PkiDir | Path,
    name: str,
    passphrase: str | None,
    key_type: str = "ecdsa384",
    days: int = 3650,
) -> IssueResult:
    """Create the CA (key encrypted with *passphrase*); refuses if a CA (cert or key) exists."""
    pki = _as_dir(pki_dir)
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
    now = _now()
    not_after = now + dt.timedelta(days=days)
    cert = ca_certificate(key, subject, now - _BACKDATE, not_after, policies=_policies_for("ca"))
    key_pem = _key_pem(key, secret)
    _kek, kek_file = keystore.new_kek(secret)
    index = Index()
    index.add(_record("ca", cn, cert))

    pki.ensure_dirs()
    _write_new_key(pki.ca_key, key_pem)
    atomic_write(pki.kek, kek_file, 0o600, overwrite=False)
    atomic_write(pki.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644, overwrite=False)
    index.save(pki)
    # An empty CRL from day one: concentrators always have one to load, and revocation only updates it.
    write_crl(pki, CA(cert, key), index=index)
    return IssueResult("ca", cn, _serial_hex(cert.serial_number), "issued", pki.ca_cert, pki.ca_key)


def load_ca(pki_dir: PkiDir | Path, passphrase: str | None) -> CA:
    """The CA certificate and decrypted key; one-line errors for a missing CA or a wrong passphrase.

    Nothing is written here. The CA keeps an :class:`Unlock`: the users' KEK when a user key is sealed or
    opened (:meth:`CA.user_kek`), and, on the first write, the move of an older CA key file to the current
    KDF. A passphrase shorter than :data:`MIN_PASSPHRASE` still opens a CA that was made with it.
    """
    pki = _as_dir(pki_dir)
    if not pki.ca_cert.exists() or not pki.ca_key.exists():
        raise SvpnError(f"no CA in {pki.path}: run `svpn pki init` first")
    secret = validate_passphrase(passphrase)
    cert = _load_cert(pki.ca_cert)
    if cert is None:
        raise SvpnError(f"CA certificate {pki.ca_cert} is not a readable PEM certificate")
    try:
        pem = pki.ca_key.read_bytes()
    except OSError as err:
        why = err.strerror or err.__class__.__name__
        raise SvpnError(f"CA key {pki.ca_key} cannot be read ({why})") from None
    try:
        key = serialization.load_pem_private_key(pem, password=secret)
    except (ValueError, TypeError):
        raise SvpnError(f"CA passphrase is wrong for {pki.ca_key}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SvpnError(f"CA key {pki.ca_key} is not an ECDSA or RSA key")
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise SvpnError(f"CA key {pki.ca_key} does not match the CA certificate {pki.ca_cert}")
    old = None if ca_key_is_current(pem) else pem  # re-encrypted on the first write (Unlock.before_write)
    return CA(cert, key, Unlock(pki, secret, ca_key=key, old_ca_pem=old))


def ca_key_is_current(pem: bytes) -> bool:
    """True if a CA key file is under scrypt at least as costly as :data:`svpn.access.keystore.CA_KDF`."""
    try:
        return keystore.kdf_info(pem).current()
    except ValueError:
        return False


def open_user_keys(pki_dir: PkiDir | Path, passphrase: str | None) -> Unlock:
    """The users' keys without the CA key, for a command that signs nothing (``svpn profiles build``):
    an :class:`Unlock` whose KEK is derived now, the passphrase checked against ``ca/kek.json``. A PKI
    from before keys were sealed has no ``kek.json`` yet: the passphrase is checked against the CA key,
    then the file is made."""
    pki = _as_dir(pki_dir)
    if not pki.ca_cert.exists() or not pki.ca_key.exists():
        raise SvpnError(f"no CA in {pki.path}: run `svpn pki init` first")
    secret = validate_passphrase(passphrase)
    if not pki.kek.exists():
        unlock = load_ca(pki, passphrase).unlock
        assert unlock is not None
    else:
        unlock = Unlock(pki, secret, kek=_load_kek(pki, secret, verified=False))
    unlock.kek()
    return unlock


def _load_kek(pki: PkiDir, secret: bytes, *, verified: bool) -> keystore.Kek:
    """The KEK from ``kek.json`` and the passphrase; made (with a new salt) if the file is missing and
    *verified* (the passphrase already opened the CA key)."""
    for _attempt in range(2):
        try:
            data = pki.kek.read_bytes()
        except FileNotFoundError:
            if not verified:
                raise SvpnError(
                    f"{pki.kek} is missing: run a command that loads the CA (svpn pki crl)"
                ) from None
            kek, text = keystore.new_kek(secret)
            try:
                atomic_write(pki.kek, text, 0o600, overwrite=False)
            except FileExistsError:
                continue  # another run made it first: use that one
            return kek
        except OSError as err:
            raise SvpnError(f"{pki.kek} cannot be read ({err.strerror or err.__class__.__name__})") from None
        try:
            found = keystore.open_kek(data, secret)
        except ValueError as err:
            raise SvpnError(
                f"{pki.kek} is malformed ({err}): restore it from the backup of {pki.ca_key.parent}; "
                "the users' sealed keys open only with it"
            ) from None
        if found is not None:
            return found
        if verified:
            raise SvpnError(
                f"CA passphrase opens {pki.ca_key} but not {pki.kek}: the users' keys were sealed under "
                "another passphrase; restore the kek.json that goes with this CA key"
            )
        raise SvpnError(f"CA passphrase is wrong for {pki.kek}")
    raise SvpnError(f"{pki.kek} changed while it was read: run again")


def _reencrypt_ca_key(pki: PkiDir, key: PrivateKey, passphrase: bytes, old_pem: bytes) -> None:
    """The CA key under the current KDF, same passphrase: a temp file then a rename (0600), and only if the
    file is still the one that was loaded (another run may have moved it already)."""
    try:
        if pki.ca_key.read_bytes() != old_pem:
            return
    except OSError:
        return
    try:
        atomic_write(pki.ca_key, keystore.encrypt_pkcs8(key, passphrase), 0o600)  # read back before written
    except OSError as err:
        raise SvpnError(
            f"CA key {pki.ca_key} could not be re-encrypted under {keystore.CA_KDF} "
            f"({err.strerror or err.__class__.__name__}); it was left as it was, nothing else was written"
        ) from None


# --------------------------------------------------------------------------- users' keys at rest


def _clear_user_key_ids(pki: PkiDir) -> list[str]:
    """IDs with a key in clear (``users/ID.key``, written before keys were sealed)."""
    try:
        with os.scandir(pki.path / "users") as entries:
            names = [e.name[:-4] for e in entries if e.name.endswith(".key") and e.is_file()]
    except FileNotFoundError:
        return []
    return sorted(name for name in names if ID_RE.match(name))


def seal_clear_user_keys(pki_dir: PkiDir | Path, kek: keystore.Kek) -> list[str]:
    """Seal every user key still in clear (``users/ID.key``) into ``users/ID.key.enc`` and remove the clear
    file; the IDs done. Every sealed file is written, then synced once, then the clear files are removed:
    an interruption leaves each key in at least one readable file. A clear file that is not a readable key
    is left where it is (issuing that user says so)."""
    pki = _as_dir(pki_dir)
    done = []
    for uid in _clear_user_key_ids(pki):
        clear, sealed = pki.clear_key_path(uid), pki.key_path("user", uid)
        try:
            key = _existing_key(clear)
        except SvpnError:
            continue
        if key is None:
            continue
        if sealed.exists():  # an interrupted earlier move: both must hold the same key
            if _public_der(_open_sealed(pki, kek, uid).public_key()) != _public_der(key.public_key()):
                raise SvpnError(
                    f"user {uid!r} has two different keys, {clear} (in clear) and {sealed}: move away the "
                    f"one that does not match users/{uid}.crt"
                )
        else:
            _write_new_key(sealed, kek.seal(uid, key), durable=False)
        done.append(uid)
    if done:
        os.sync()
        for uid in done:
            pki.clear_key_path(uid).unlink(missing_ok=True)
    return done


def _open_sealed(pki: PkiDir, kek: keystore.Kek, user_id: str) -> PrivateKey:
    path = pki.key_path("user", user_id)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SvpnError(f"key {path} cannot be read ({err.strerror or err.__class__.__name__})") from None
    try:
        return kek.open(user_id, data)
    except keystore.SealError as err:
        raise SvpnError(f"key {path} {err}; it is never replaced: move it away to issue a new key") from None


def has_user_key(pki_dir: PkiDir | Path, user_id: str) -> bool:
    """True if the user has a key file: sealed, or in clear from before keys were sealed."""
    pki = _as_dir(pki_dir)
    return pki.key_path("user", user_id).exists() or pki.clear_key_path(user_id).exists()


def read_user_key(pki_dir: PkiDir | Path, kek: keystore.Kek, user_id: str) -> PrivateKey:
    """A user's private key: opened from ``users/ID.key.enc`` with *kek* (see :meth:`CA.user_kek` and
    :func:`open_user_keys`), or read from ``users/ID.key`` in a PKI from before keys were sealed."""
    pki = _as_dir(pki_dir)
    key, _in_clear = _user_key(pki, kek, user_id)
    if key is None:
        raise SvpnError(f"ID {user_id!r} has no key in {pki.path / 'users'}: issue its certificate first")
    return key


def _user_key(pki: PkiDir, kek: keystore.Kek | CA, user_id: str) -> tuple[PrivateKey | None, bool]:
    """The user's key (None if there is none) and whether it lay in clear. With a :class:`CA`, its KEK is
    derived only if a sealed key must be opened."""
    if pki.key_path("user", user_id).exists():
        return _open_sealed(pki, kek.user_kek() if isinstance(kek, CA) else kek, user_id), False
    key = _existing_key(pki.clear_key_path(user_id))
    return key, key is not None


def _write_new_key(path: Path, pem: bytes, durable: bool = True) -> None:
    try:
        atomic_write(path, pem, 0o600, overwrite=False, durable=durable)
    except FileExistsError:
        raise SvpnError(f"key {path} appeared while issuing; it was left untouched, run again") from None


# --------------------------------------------------------------------------- issuing


def _existing_key(path: Path) -> PrivateKey | None:
    if not path.exists():
        return None
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        raise SvpnError(
            f"key {path} exists but cannot be read as an unencrypted PEM key; it is never replaced: "
            "move it away to issue a new key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SvpnError(f"key {path} is not an ECDSA or RSA key")
    return key


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return ext.get_values_for_type(x509.DNSName), ext.get_values_for_type(x509.RFC822Name)


def _still_good(
    pki: PkiDir,
    ca: CA,
    record: dict[str, Any] | None,
    kind: Kind,
    name: str,
    dns: list[str],
    emails: list[str],
) -> bool:
    """True if the current certificate for *name* is ours, valid, matches its key and the request, and
    carries the policies of its kind (a user certificate without USER_CERT_POLICY is re-issued)."""
    if record is None or record["status"] != "valid":
        return False
    cert = _load_cert(pki.cert_path(kind, name))
    key_path = pki.key_path(kind, name)
    has_key = has_user_key(pki, name) if kind == "user" else key_path.exists()
    if cert is None or not has_key or _serial_hex(cert.serial_number) != record["serial"]:
        return False
    if cert.not_valid_after_utc <= _now():
        return False
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    key = _user_key(pki, ca, name)[0] if kind == "user" else _existing_key(key_path)
    if key is None or _public_der(key.public_key()) != _public_der(cert.public_key()):
        return False
    if cert_policies(cert) != _policies_for(kind):
        return False
    have_dns, have_emails = _sans(cert)
    return sorted(have_dns) == sorted(dns) and sorted(have_emails) == sorted(emails)


def _leaf_cert(
    ca: CA,
    key: PrivateKey,
    cn: str,
    sans: list[x509.GeneralName],
    eku: list[ObjectIdentifier],
    days: int,
    policies: list[ObjectIdentifier],
) -> x509.Certificate:
    now = _now()
    not_after = min(now + dt.timedelta(days=days), ca.cert.not_valid_after_utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
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
        builder = builder.add_extension(_policies_extension(policies), critical=False)
    return builder.sign(ca.key, _hash_for(ca.key))


def _issue(
    pki_dir: PkiDir | Path,
    ca: CA,
    kind: Kind,
    name: str,
    dns: list[str],
    emails: list[str],
    eku: list[ObjectIdentifier],
    days: int,
    index: Index | None,
    extra: dict[str, Any],
    durable: bool = True,
) -> IssueResult:
    pki = _as_dir(pki_dir)
    own_index = index is None
    idx = Index.load(pki) if index is None else index
    record = idx.current(kind, name)
    cert_path, key_path = pki.cert_path(kind, name), pki.key_path(kind, name)
    if record is not None and record["status"] == "revoked":
        raise SvpnError(
            f"{kind} {name!r} is revoked (serial {record['serial']}, {record['revoked_at']}); "
            f"its key is not reused: issue a certificate under a new {'ID' if kind == 'user' else 'NAME'}"
        )
    if ca.unlock is not None:
        ca.unlock.before_write()  # once per CA load: an older CA key file, users' keys left in clear
    if _still_good(pki, ca, record, kind, name, dns, emails):
        assert record is not None
        return IssueResult(kind, name, record["serial"], "unchanged", cert_path, key_path)

    key, in_clear = _user_key(pki, ca, name) if kind == "user" else (_existing_key(key_path), False)
    new_key = key is None
    if key is None:
        key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns] + [x509.RFC822Name(e) for e in emails]
    cert = _leaf_cert(ca, key, name, sans, eku, days, _policies_for(kind))
    idx.add(_record(kind, name, cert, **extra))

    pki.ensure_dirs()
    if new_key or in_clear:  # a user's key is sealed (in_clear: a key from before keys were sealed)
        pem = ca.user_kek().seal(name, key) if kind == "user" else _key_pem(key)
        _write_new_key(key_path, pem, durable and not in_clear)
    atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644, durable=durable)
    if in_clear:
        os.sync()  # the sealed key is on disk before the clear one goes
        pki.clear_key_path(name).unlink(missing_ok=True)
    if own_index:
        idx.save(pki)
    return IssueResult(kind, name, _serial_hex(cert.serial_number), "issued", cert_path, key_path)


def issue_server(
    pki_dir: PkiDir | Path,
    ca: CA,
    name: str,
    sans: list[str],
    days: int = 825,
    *,
    index: Index | None = None,
) -> IssueResult:
    """Concentrator certificate: CN=NAME, the DNS SANs given, EKU serverAuth + IKE intermediate.

    Unchanged if a valid certificate with the same SANs exists; otherwise (re-)issued, reusing the
    existing key. With *index* (see :func:`bulk`) the index is not saved here.
    """
    validate_id(name, "NAME")
    if not sans:
        raise SvpnError(f"SAN is missing for server {name!r}: give at least one --san DNS name")
    dns = list(dict.fromkeys(validate_dns_name(s) for s in sans))
    validate_days(days)
    eku = [ExtendedKeyUsageOID.SERVER_AUTH, IKE_INTERMEDIATE]
    return _issue(pki_dir, ca, "server", name, dns, [], eku, days, index, {"sans": dns})


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
    (see :func:`bulk`) the index is not saved here; ``durable=False`` (bulk issuing) skips the per-file
    fsync, and the caller must sync before it saves the index.
    """
    validate_id(user_id, "ID")
    emails = [validate_email(email)] if email is not None else []
    full_name = validate_full_name(name) if name is not None else None
    validate_days(days)
    if emails:
        holder = (Index.load(pki_dir) if index is None else index).email_holder(emails[0], user_id)
        if holder is not None:
            raise SvpnError(
                f"email {emails[0]!r} already belongs to user {holder['name']!r} (certificate "
                f"{holder['serial']}, valid until {holder['not_after'][:10]}): two IDs with one e-mail "
                f"share an IKE identity and evict each other; revoke {holder['name']!r} first or give "
                "another e-mail"
            )
    extra = {"email": emails[0] if emails else None, "full_name": full_name}
    eku = [ExtendedKeyUsageOID.CLIENT_AUTH]
    return _issue(pki_dir, ca, "user", user_id, [], emails, eku, days, index, extra, durable)


# --------------------------------------------------------------------------- identities and the user policy


def identities_of_users(pki_dir: PkiDir | Path, user_ids: list[str]) -> dict[str, list[str]]:
    """Per user ID, every identity that any certificate ever issued to it lets its holder authenticate as
    (the current one, superseded and revoked ones alike), as strongSwan prints it: the subject DN
    (``CN=alice``) and each SAN (the e-mail, ...); see :func:`svpn.farm.identities.cert_identities`.

    Read from the index (each record keeps its certificate's identities; a record written before they were
    kept stands for ``CN=ID`` and its e-mail, all svpn put in user certificates then) and the current
    certificate file. No passphrase needed. Raises :class:`SvpnError` naming every unknown ID.
    """
    pki = _as_dir(pki_dir)
    for user_id in user_ids:
        validate_id(user_id, "ID")
    if not pki.ca_cert.exists():
        raise SvpnError(f"no CA in {pki.path}: run `svpn pki init` first")
    found: dict[str, list[str]] = {user_id: [] for user_id in user_ids}
    seen: set[str] = set()
    for record in Index.load(pki).certs:
        user_id = record["name"]
        if record["kind"] != "user" or user_id not in found:
            continue
        seen.add(user_id)
        if "identities" in record:
            found[user_id] += record["identities"]
        else:
            found[user_id] += [f"CN={user_id}"] + ([record["email"]] if record.get("email") else [])
    unknown = [user_id for user_id in found if user_id not in seen]
    if unknown:
        names = ", ".join(repr(u) for u in unknown)
        raise SvpnError(
            f"{'ID' if len(unknown) == 1 else 'IDs'} {names} {'is' if len(unknown) == 1 else 'are'} "
            f"unknown: no user certificate was ever issued to {'it' if len(unknown) == 1 else 'them'} "
            f"in {pki.index}"
        )
    for user_id in found:
        cert = _load_cert(pki.cert_path("user", user_id))
        if cert is not None:
            found[user_id] += cert_identities(cert)
    return {user_id: unique(identities) for user_id, identities in found.items()}


def identities_of_user(pki_dir: PkiDir | Path, user_id: str) -> list[str]:
    """:func:`identities_of_users` for one ID."""
    return identities_of_users(pki_dir, [user_id])[user_id]


def swanctl_cert_policy(kind: str = "user") -> str:
    """The swanctl.conf ``cert_policy`` value that admits certificates of *kind* (``user``) alone:
    USER_CERT_POLICY as strongSwan writes it, since charon compares the text (the UUID arc wraps to 32
    bits there, see :func:`svpn.farm.identities.strongswan_oid_text`). The Ansible filter
    svpn_cert_policy."""
    if kind != "user":
        raise ValueError(f"cert policy kind {kind!r}: only 'user' certificates carry one")
    return strongswan_oid_text(USER_CERT_POLICY)


def ca_allows_user_policy(pki_dir: PkiDir | Path) -> bool:
    """True if the CA certificate lists USER_CERT_POLICY. Until it does, strongSwan ignores the policy on
    user certificates ("not allowed by trustchain") and a concentrator requiring it refuses every user."""
    pki = _as_dir(pki_dir)
    cert = _load_cert(pki.ca_cert)
    if cert is None:
        raise SvpnError(f"no readable CA certificate {pki.ca_cert}: run `svpn pki init` first")
    return USER_CERT_POLICY in cert_policies(cert)


def add_ca_policy(pki_dir: PkiDir | Path, ca: CA) -> Literal["updated", "unchanged"]:
    """Make the CA certificate list USER_CERT_POLICY (a CA made before the policy existed): re-signed with
    the same key, subject, validity and extensions, and a new serial. Everything the CA issued stays valid,
    and clients keep trusting the concentrators with the old CA certificate; the concentrators need the new
    one (ca/ca.crt) before they require the policy."""
    pki = _as_dir(pki_dir)
    old = _load_cert(pki.ca_cert) or ca.cert  # as it is now: another run may have changed it
    if USER_CERT_POLICY in cert_policies(old):
        return "unchanged"
    if _public_der(old.public_key()) != _public_der(ca.key.public_key()):
        raise SvpnError(f"CA key does not match the CA certificate {pki.ca_cert}")
    cert = with_policies(old, [*cert_policies(old), USER_CERT_POLICY], ca.key)
    index = Index.load(pki)
    index.add(_record("ca", _cn(cert.subject), cert))
    atomic_write(pki.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    index.save(pki)
    return "updated"


# --------------------------------------------------------------------------- revocation and CRL


def build_crl(ca: CA, index: Index, days: int = 7) -> x509.CertificateRevocationList:
    """A CRL with every revoked serial in *index*, numbered ``index.crl_number``."""
    now = _now()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - _BACKDATE)
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
                .revocation_date(_parse_iso(record["revoked_at"]))
                .build()
            )
            builder = builder.add_revoked_certificate(revoked)
    return builder.sign(ca.key, _hash_for(ca.key))


def write_crl(pki_dir: PkiDir | Path, ca: CA, days: int = 7, *, index: Index | None = None) -> Path:
    """(Re)write ``crl.pem`` with the next CRL number; saves the index (the number is consumed)."""
    validate_days(days)
    pki = _as_dir(pki_dir)
    if ca.unlock is not None:
        ca.unlock.before_write()  # once per CA load: an older CA key file, users' keys left in clear
    idx = Index.load(pki) if index is None else index
    idx.crl_number += 1
    idx.dirty = True
    crl = build_crl(ca, idx, days)
    pki.ensure_dirs()
    idx.save(pki)
    atomic_write(pki.crl, crl.public_bytes(serialization.Encoding.PEM), 0o644)
    return pki.crl


def revoke(
    pki_dir: PkiDir | Path, ca: CA, name: str, kind: Kind = "user", crl_days: int = 7
) -> Literal["revoked", "unchanged"]:
    """Revoke the current certificate of user (or server) *name* and every superseded one (same key),
    then rewrite the CRL. ``"unchanged"`` if it was already revoked."""
    validate_id(name, "ID" if kind == "user" else "NAME")
    pki = _as_dir(pki_dir)
    index = Index.load(pki)
    record = index.current(kind, name)
    if record is None:
        raise SvpnError(
            f"{'ID' if kind == 'user' else 'NAME'} {name!r} is unknown: no {kind} certificate "
            f"with that name in {pki.index}"
        )
    if record["status"] == "revoked":
        return "unchanged"
    when = _iso(_now())
    for old in index.certs:
        if old["kind"] == kind and old["name"] == name and old["status"] != "revoked":
            old["status"] = "revoked"
            old["revoked_at"] = when
    write_crl(pki, ca, crl_days, index=index)
    return "revoked"


# --------------------------------------------------------------------------- listing


def list_certs(pki_dir: PkiDir | Path) -> list[dict[str, str]]:
    """Every certificate in the index: ``serial``, ``kind``, ``cn``, ``not_after``, ``status``.

    ``status`` is ``valid``, ``revoked``, ``superseded`` or ``expired`` (computed from not_after).
    """
    pki = _as_dir(pki_dir)
    if not pki.ca_cert.exists():
        raise SvpnError(f"no CA in {pki.path}: run `svpn pki init` first")
    now = _now()
    rows = []
    for record in Index.load(pki).certs:
        status = record["status"]
        if status == "valid" and _parse_iso(record["not_after"]) <= now:
            status = "expired"
        rows.append(
            {
                "serial": record["serial"],
                "kind": record["kind"],
                "cn": record["name"],
                "not_after": record["not_after"],
                "status": status,
            }
        )
    return rows


# --------------------------------------------------------------------------- expiry warnings

WARN_DAYS = 14  # the CA and the concentrator certificates
CRL_WARN_DAYS = 3  # the CRL lives 7 days (`svpn pki crl --days`) and is re-signed daily: a shorter window


@dataclass(frozen=True)
class ExpiryWarning:
    """The CA, a concentrator certificate or the CRL expires within the window, or already has.

    ``not_after`` is the certificate's notAfter or the CRL's nextUpdate; None for a missing or unreadable
    CRL. ``left`` is ``not_after - now`` (negative once expired).
    """

    kind: Literal["ca", "server", "crl"]
    name: str
    path: Path
    not_after: dt.datetime | None
    left: dt.timedelta | None

    @property
    def expired(self) -> bool:
        return self.left is None or self.left <= dt.timedelta(0)

    def __str__(self) -> str:
        if self.not_after is None or self.left is None:
            return f"CRL {self.path} is missing or unreadable: write one (`svpn pki crl`) and publish it"
        when = f"{self.not_after:%Y-%m-%d %H:%M} UTC"
        hours = int(self.left.total_seconds() // 3600)
        soon = f"in {self.left.days} days" if hours >= 48 else f"in {hours} hours"
        if hours < 2:
            soon = "within 2 hours"
        if self.kind == "ca":
            if self.expired:
                return (
                    f"CA certificate {self.name!r} expired on {when}: nothing it issued is accepted "
                    f"({self.path})"
                )
            return (
                f"CA certificate {self.name!r} expires on {when} ({soon}): nothing it issued is accepted "
                f"after that; roll out a new CA before then ({self.path})"
            )
        if self.kind == "server":
            if self.expired:
                return (
                    f"server certificate {self.name!r} expired on {when}: clients refuse that concentrator; "
                    f"re-issue it (`svpn pki server {self.name} --san ...`, or site.yml) ({self.path})"
                )
            return (
                f"server certificate {self.name!r} expires on {when} ({soon}): clients refuse that "
                f"concentrator after that ({self.path})"
            )
        if self.expired:
            return (
                f"CRL expired on {when} (nextUpdate): publish a fresh one now (playbooks/crl.yml, or "
                f"`svpn pki crl`) ({self.path})"
            )
        return (
            f"CRL expires on {when} (nextUpdate, {soon}): publish a fresh one before then "
            f"(playbooks/crl.yml, or `svpn pki crl`) ({self.path})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "path": str(self.path),
            "not_after": _iso(self.not_after) if self.not_after is not None else None,
            "expired": self.expired,
            "days_left": self.left.days if self.left is not None else None,
            "message": str(self),
        }


def expiry_warnings(
    pki_dir: PkiDir | Path,
    now: dt.datetime,
    days: int = WARN_DAYS,
    crl_days: int = CRL_WARN_DAYS,
) -> list[ExpiryWarning]:
    """What expires within *days* (the CA and the current concentrator certificates) or *crl_days* (the
    CRL's nextUpdate) of *now*, or already has: the CA first, then servers by name, then the CRL.

    Reads the certificate files and the CRL only (no passphrase, nothing written). A server certificate
    that cannot be read is judged by its index record; a missing or unreadable CRL is a warning.
    """
    pki = _as_dir(pki_dir)
    if not pki.ca_cert.exists():
        raise SvpnError(f"no CA in {pki.path}: run `svpn pki init` first")
    ca_cert = _load_cert(pki.ca_cert)
    if ca_cert is None:
        raise SvpnError(f"CA certificate {pki.ca_cert} is not a readable PEM certificate")
    window, crl_window = dt.timedelta(days=days), dt.timedelta(days=crl_days)
    found: list[ExpiryWarning] = []

    def check(
        kind: Literal["ca", "server", "crl"], name: str, path: Path, when: dt.datetime, within: dt.timedelta
    ) -> None:
        if when - now <= within:
            found.append(ExpiryWarning(kind, name, path, when, when - now))

    check("ca", _cn(ca_cert.subject), pki.ca_cert, ca_cert.not_valid_after_utc, window)
    servers = [r for r in Index.load(pki).certs if r["kind"] == "server" and r["status"] == "valid"]
    for record in sorted(servers, key=lambda r: str(r["name"])):
        path = pki.cert_path("server", record["name"])
        cert = _load_cert(path)
        when = cert.not_valid_after_utc if cert is not None else _parse_iso(record["not_after"])
        check("server", record["name"], path, when, window)
    try:
        crl = x509.load_pem_x509_crl(pki.crl.read_bytes())
        next_update = crl.next_update_utc
    except (OSError, ValueError):
        next_update = None
    if next_update is None:
        found.append(ExpiryWarning("crl", "crl", pki.crl, None, None))
    else:
        check("crl", "crl", pki.crl, next_update, crl_window)
    return found
