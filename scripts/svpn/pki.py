"""A small private CA for the farm: the CA, concentrator (server) and user certificates, the CRL.

Layout under the PKI directory (default ``pki/`` at the repository root; directories are 0700)::

    ca/ca.crt           CA certificate (PEM, self-signed)
    ca/ca.key           CA private key (PKCS#8 PEM, encrypted with the CA passphrase, 0600)
    servers/NAME.crt    concentrator certificate (PEM)
    servers/NAME.key    concentrator private key (PKCS#8 PEM, unencrypted: deployed to the node, 0600)
    users/ID.crt        user certificate (PEM)
    users/ID.key        user private key (PKCS#8 PEM, unencrypted, 0600)
    index.json          the issuance record (see below)
    crl.pem             the CRL (PEM), signed by the CA

``index.json`` is ``{"version": 1, "crl_number": N, "certs": [...]}``; each record has ``serial``
(lower-case hex), ``kind`` (``ca``/``server``/``user``), ``name`` (the CA name, the server NAME or the
user ID, which is also the subject CN), ``not_after`` (ISO 8601, UTC), ``status`` (``valid``,
``revoked``, or ``superseded`` once a newer certificate was issued for the same name with the same
key) and ``revoked_at`` (ISO 8601 or null); user records also keep ``email`` and ``full_name``.

Rules: every file is written atomically (:func:`svpn.fsutil.atomic_write`); private keys are never
overwritten; everything is validated, and the CA key loaded and decrypted, before anything is
written. The CA passphrase is never printed nor stored.

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from svpn.errors import SvpnError
from svpn.fsutil import atomic_write

Kind = Literal["ca", "server", "user"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

KEY_TYPES = ("ecdsa384", "ecdsa256", "rsa3072", "rsa4096")
ID_RULE = "1-64 characters: a-z 0-9 . _ - (lower case), starting with a letter or digit"
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSPHRASE = 8
IKE_INTERMEDIATE = ObjectIdentifier("1.3.6.1.5.5.8.2.2")
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

    def key_path(self, kind: Kind, name: str) -> Path:
        if kind == "ca":
            return self.ca_key
        return self.path / _subdir(kind) / f"{name}.key"

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
        raise SvpnError(f"CA passphrase is too short: at least {MIN_PASSPHRASE} characters are required")
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

    def add(self, record: dict[str, Any]) -> None:
        for old in self.certs:
            if old["kind"] == record["kind"] and old["name"] == record["name"] and old["status"] == "valid":
                old["status"] = "superseded"
        self.certs.append(record)
        self.dirty = True


def _record(kind: Kind, name: str, cert: x509.Certificate, **extra: Any) -> dict[str, Any]:
    return {
        "serial": _serial_hex(cert.serial_number),
        "kind": kind,
        "name": name,
        "issued_at": _iso(_now()),
        "not_after": _iso(cert.not_valid_after_utc),
        "status": "valid",
        "revoked_at": None,
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
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


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
) -> x509.Certificate:
    """A self-signed CA certificate (pathlen 0: it issues end-entity certificates only)."""
    return (
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
        .sign(key, _hash_for(key))
    )


def init_ca(
    pki_dir: PkiDir | Path,
    name: str,
    passphrase: str | None,
    key_type: str = "ecdsa384",
    days: int = 3650,
) -> IssueResult:
    """Create the CA (key encrypted with *passphrase*); refuses if a CA (cert or key) exists."""
    pki = _as_dir(pki_dir)
    for existing in (pki.ca_cert, pki.ca_key):
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
    cert = ca_certificate(key, subject, now - _BACKDATE, now + dt.timedelta(days=days))
    key_pem = _key_pem(key, secret)
    index = Index()
    index.add(_record("ca", cn, cert))

    pki.ensure_dirs()
    _write_new_key(pki.ca_key, key_pem)
    atomic_write(pki.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644, overwrite=False)
    index.save(pki)
    # An empty CRL from day one: concentrators always have one to load, and revocation only updates it.
    write_crl(pki, CA(cert, key), index=index)
    return IssueResult("ca", cn, _serial_hex(cert.serial_number), "issued", pki.ca_cert, pki.ca_key)


def load_ca(pki_dir: PkiDir | Path, passphrase: str | None) -> CA:
    """The CA certificate and decrypted key; one-line errors for a missing CA or a wrong passphrase."""
    pki = _as_dir(pki_dir)
    if not pki.ca_cert.exists() or not pki.ca_key.exists():
        raise SvpnError(f"no CA in {pki.path}: run `svpn pki init` first")
    secret = validate_passphrase(passphrase)
    cert = _load_cert(pki.ca_cert)
    if cert is None:
        raise SvpnError(f"CA certificate {pki.ca_cert} is not a readable PEM certificate")
    try:
        key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=secret)
    except (ValueError, TypeError):
        raise SvpnError(f"CA passphrase is wrong for {pki.ca_key}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SvpnError(f"CA key {pki.ca_key} is not an ECDSA or RSA key")
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise SvpnError(f"CA key {pki.ca_key} does not match the CA certificate {pki.ca_cert}")
    return CA(cert, key)


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
    """True if the current certificate for *name* is ours, valid, matches its key and the request."""
    if record is None or record["status"] != "valid":
        return False
    cert = _load_cert(pki.cert_path(kind, name))
    key_path = pki.key_path(kind, name)
    if cert is None or not key_path.exists() or _serial_hex(cert.serial_number) != record["serial"]:
        return False
    if cert.not_valid_after_utc <= _now():
        return False
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    key = _existing_key(key_path)
    if key is None or _public_der(key.public_key()) != _public_der(cert.public_key()):
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
    if _still_good(pki, ca, record, kind, name, dns, emails):
        assert record is not None
        return IssueResult(kind, name, record["serial"], "unchanged", cert_path, key_path)

    key = _existing_key(key_path)
    new_key = key is None
    if key is None:
        key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns] + [x509.RFC822Name(e) for e in emails]
    cert = _leaf_cert(ca, key, name, sans, eku, days)
    idx.add(_record(kind, name, cert, **extra))

    pki.ensure_dirs()
    if new_key:
        _write_new_key(key_path, _key_pem(key), durable)
    atomic_write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644, durable=durable)
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
    revoked ID. With *index* (see :func:`bulk`) the index is not saved here; ``durable=False`` (bulk
    issuing) skips the per-file fsync, and the caller must sync before it saves the index.
    """
    validate_id(user_id, "ID")
    emails = [validate_email(email)] if email is not None else []
    full_name = validate_full_name(name) if name is not None else None
    validate_days(days)
    extra = {"email": emails[0] if emails else None, "full_name": full_name}
    eku = [ExtendedKeyUsageOID.CLIENT_AUTH]
    return _issue(pki_dir, ca, "user", user_id, [], emails, eku, days, index, extra, durable)


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
