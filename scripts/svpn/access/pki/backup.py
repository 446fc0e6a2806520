"""``svpn pki backup``: the whole PKI directory in one encrypted archive (format:
:mod:`svpn.access.pki.backup_format`), and what an archive says about the PKI it holds
(:class:`PkiState`, :func:`summary_lines`), which :mod:`svpn.access.pki.restore` reuses. Imports svpn.access
(backup_format, cert_index, certs, keystore, pkidir, validation, clock), svpn.core and svpn's version.

The archive is sealed under the CA passphrase (a key derived from it with scrypt and the archive's own salt):
the one secret the PKI already needs, so a backup opens wherever the CA would, and holds nothing the CA
passphrase did not already protect. A backup is only written once that passphrase has opened the CA key it
archives: no archive is ever made that could not restore the CA.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from svpn import __version__
from svpn.access.pki import backup_format, clock, keystore
from svpn.access.pki.backup_format import Member
from svpn.access.pki.certs import public_der
from svpn.access.pki.pkidir import PkiDir, as_dir, locked, require_ca
from svpn.access.pki.validation import validate_passphrase
from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write

CA_CERT, CA_KEY, KEK, INDEX, CRL = "ca/ca.crt", "ca/ca.key", "ca/kek.json", "index.json", "crl.pem"
SECRET_SUFFIXES = (".key", ".key.enc")  # with ca/kek.json: restored 0600 whatever the archive says


def is_secret(name: str) -> bool:
    """True for the files that must stay 0600: private keys, sealed keys, the KEK's salt and check."""
    return name.endswith(SECRET_SUFFIXES) or name == KEK


# --------------------------------------------------------------------------- what a PKI holds


@dataclass(frozen=True)
class PkiState:
    """What tells two PKIs apart, read from the bytes of its CA certificate, index and CRL."""

    ca: x509.Certificate
    certs: list[dict[str, Any]]
    crl_number: int
    crl: x509.CertificateRevocationList | None

    @classmethod
    def from_files(cls, files: Mapping[str, bytes | None], where: str) -> PkiState:
        """From ``ca/ca.crt``, ``index.json`` and ``crl.pem`` (None: absent); *where* names them in errors."""
        ca_pem = files.get(CA_CERT)
        if ca_pem is None:
            raise SvpnError(f"{where} has no {CA_CERT}: it holds no CA")
        try:
            ca = x509.load_pem_x509_certificate(ca_pem)
        except ValueError:
            raise SvpnError(f"{CA_CERT} in {where} is not a readable PEM certificate") from None
        certs, crl_number = _parse_index(files.get(INDEX), where)
        crl = None
        crl_pem = files.get(CRL)
        if crl_pem is not None:
            try:
                crl = x509.load_pem_x509_crl(crl_pem)
            except ValueError:
                crl = None  # a damaged CRL is rewritten by `svpn pki crl`; it does not stop a backup
        return cls(ca, certs, crl_number, crl)

    @property
    def ca_subject(self) -> str:
        return self.ca.subject.rfc4514_string()

    @property
    def ca_fingerprint(self) -> str:
        return self.ca.fingerprint(hashes.SHA256()).hex(":").upper()

    @property
    def ca_key_id(self) -> str:
        """SHA-256 of the CA's public key: the same CA, even once its certificate is re-signed."""
        return hashlib.sha256(public_der(self.ca.public_key())).hexdigest()

    @property
    def newest_issue(self) -> str | None:
        stamps = [str(r["issued_at"]) for r in self.certs if r.get("issued_at")]
        return max(stamps, key=clock.parse_iso) if stamps else None

    def statuses(self) -> dict[str, str]:
        """Serial -> status (``valid``, ``revoked``, ``superseded``)."""
        return {str(r.get("serial")): str(r.get("status")) for r in self.certs}

    def to_json(self) -> dict[str, Any]:
        by_kind: dict[str, int] = {}
        for record in self.certs:
            by_kind[str(record.get("kind"))] = by_kind.get(str(record.get("kind")), 0) + 1
        this_update = None if self.crl is None else clock.iso(self.crl.last_update_utc)
        return {
            "ca": {
                "subject": self.ca_subject,
                "sha256_fingerprint": self.ca_fingerprint,
                "key_sha256": self.ca_key_id,
                "not_after": clock.iso(self.ca.not_valid_after_utc),
            },
            "index": {
                "certificates": len(self.certs),
                "by_kind": dict(sorted(by_kind.items())),
                "revoked": sum(1 for r in self.certs if r.get("status") == "revoked"),
                "newest_issue": self.newest_issue,
            },
            "crl": {"number": self.crl_number, "this_update": this_update},
        }


def _parse_index(data: bytes | None, where: str) -> tuple[list[dict[str, Any]], int]:
    """The records and CRL number of ``index.json`` bytes (as :class:`svpn.access.pki.cert_index.Index`
    reads the file; none yet: no record)."""
    if data is None:
        return [], 0
    try:
        doc = json.loads(data)
        certs = doc["certs"]
        crl_number = int(doc.get("crl_number", 0))
        if not isinstance(certs, list) or not all(isinstance(c, dict) for c in certs):
            raise TypeError("certs")
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise SvpnError(f"{INDEX} in {where} is unreadable or malformed ({err.__class__.__name__})") from None
    return certs, crl_number


def verify_secret(files: Mapping[str, bytes], secret: bytes, where: str) -> list[str]:
    """Refuse unless *secret* opens the CA key of *files* and that key matches the CA certificate.
    Returns warnings: a ``kek.json`` the passphrase does not open (the users' keys would not open)."""
    try:
        key = serialization.load_pem_private_key(files[CA_KEY], password=secret)
    except KeyError:
        raise SvpnError(f"{where} has no {CA_KEY}: a backup without the CA key cannot restore the CA") from None
    except (ValueError, TypeError):
        raise SvpnError(f"CA passphrase is wrong for {CA_KEY} in {where}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SvpnError(f"{CA_KEY} in {where} is not an ECDSA or RSA key")
    cert = x509.load_pem_x509_certificate(files[CA_CERT])
    if public_der(key.public_key()) != public_der(cert.public_key()):
        raise SvpnError(f"{CA_KEY} in {where} does not match {CA_CERT}")
    warnings = []
    if KEK in files:
        try:
            opened = keystore.open_kek(files[KEK], secret)
        except ValueError as err:
            opened, why = None, f"is malformed ({err})"
        else:
            why = "does not open with the CA passphrase"
        if opened is None:
            warnings.append(f"{KEK} in {where} {why}: the users' sealed keys will not open")
    return warnings


# --------------------------------------------------------------------------- reading the directory


def read_tree(root: Path) -> list[Member]:
    """Every directory and regular file under *root* (not *root* itself), each directory before what it
    holds, names sorted. Anything else (a link, a socket...) is refused: a restore would refuse it."""
    members: list[Member] = []

    def walk(directory: Path, prefix: str) -> None:
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            name = f"{prefix}{entry.name}"
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                members.append(Member(name, "dir", stat.S_IMODE(info.st_mode), int(info.st_mtime)))
                walk(Path(entry.path), f"{name}/")
            elif stat.S_ISREG(info.st_mode):
                data = Path(entry.path).read_bytes()
                members.append(Member(name, "file", stat.S_IMODE(info.st_mode), int(info.st_mtime), data))
            else:
                what = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
                raise SvpnError(
                    f"{entry.path} is {what}: a PKI directory holds regular files and directories only "
                    "(move it out of the PKI directory, then back up)"
                )

    try:
        walk(root, "")
    except OSError as err:
        raise SvpnError(f"{err.filename} cannot be read ({err.strerror or err.__class__.__name__})") from None
    return members


def files_of(members: list[Member]) -> dict[str, bytes]:
    return {m.name: m.data for m in members if m.kind == "file"}


def tree_json(members: list[Member]) -> dict[str, int]:
    files = [m for m in members if m.kind == "file"]
    return {"files": len(files), "dirs": len(members) - len(files), "bytes": sum(len(m.data) for m in files)}


# --------------------------------------------------------------------------- backup


@dataclass(frozen=True)
class BackupResult:
    path: Path
    archive_bytes: int
    meta: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": "written",
            "file": str(self.path),
            "archive_bytes": self.archive_bytes,
            **self.meta,
            "warnings": self.warnings,
        }


def make_backup(pki_dir: PkiDir | Path, out: Path, passphrase: str | None, *, force: bool = False) -> BackupResult:
    """Write the archive of *pki_dir* to *out* (0600, through a temp file in its directory, then a rename;
    an existing *out* only with *force*). The PKI's lock is held while its files are read, so the archive
    is one consistent state."""
    pki = as_dir(pki_dir)
    require_ca(pki)
    out = Path(out).absolute()
    if out.resolve().is_relative_to(pki.path.resolve()):
        raise SvpnError(f"--out {out} is inside the PKI directory {pki.path}: put the backup elsewhere")
    if out.is_dir():
        raise SvpnError(f"--out {out} is a directory: give a file name")
    if out.exists() and not force:
        raise SvpnError(f"--out {out} exists: refusing to overwrite it (--force replaces it)")
    secret = validate_passphrase(passphrase)
    with locked(pki):
        members = read_tree(pki.path)
    files = files_of(members)
    state = PkiState.from_files(files, str(pki.path))
    warnings = verify_secret(files, secret, str(pki.path))
    meta = {
        "created": clock.iso(clock.now()),
        "host": socket.gethostname(),
        "source": str(pki.path.absolute()),
        "svpn": __version__,
        "pki": {**state.to_json(), "tree": tree_json(members)},
    }
    data = backup_format.seal(backup_format.pack(members), meta, secret, keystore.CA_KDF)
    try:
        atomic_write(out, data, 0o600, overwrite=force)
    except FileExistsError:
        raise SvpnError(f"--out {out} appeared while the backup was made: nothing was overwritten") from None
    except OSError as err:
        why = err.strerror or err.__class__.__name__
        raise SvpnError(f"--out {out} cannot be written ({why}): no backup was made") from None
    return BackupResult(out, len(data), meta, warnings)


# --------------------------------------------------------------------------- what people read


def size_text(count: int) -> str:
    size, unit = float(count), "bytes"
    for next_unit in ("KiB", "MiB", "GiB"):
        if size < 1024:
            break
        size, unit = size / 1024, next_unit
    return f"{count} bytes" if unit == "bytes" else f"{size:.1f} {unit}"


def summary_lines(meta: Mapping[str, Any], kdf: keystore.ScryptParams | None = None) -> list[str]:
    """The archive's metadata as aligned lines (what ``svpn pki backup`` and ``restore`` print)."""
    pki = meta.get("pki", {})
    ca, index, crl, tree = (pki.get(k, {}) for k in ("ca", "index", "crl", "tree"))
    kinds = ", ".join(f"{_n(count)} {kind}" for kind, count in index.get("by_kind", {}).items()) or "none"
    rows = [
        ("created", f"{meta.get('created')} on {meta.get('host')} from {meta.get('source')}"),
        ("CA", f"{ca.get('subject')}, valid until {ca.get('not_after')}"),
        ("CA sha256", str(ca.get("sha256_fingerprint"))),
        ("index", f"{_n(index.get('certificates'))} certificates ({kinds}), {_n(index.get('revoked'))} revoked"),
        ("newest issue", str(index.get("newest_issue") or "none")),
        ("CRL", f"number {crl.get('number')}, valid from {crl.get('this_update') or 'never (no crl.pem)'}"),
        ("files", f"{_n(tree.get('files'))} in {_n(tree.get('dirs'))} directories, {size_text(tree.get('bytes', 0))}"),
    ]
    if kdf is not None:
        rows.append(("encryption", f"{backup_format.CIPHER}, key from the CA passphrase ({kdf})"))
    width = max(len(label) for label, _ in rows)
    return [f"  {label.ljust(width)}  {value}" for label, value in rows]


def _n(value: Any) -> str:
    """A count with thousands separators (a header from elsewhere may hold anything: shown as it is)."""
    return f"{value:,}" if isinstance(value, int) else str(value)
