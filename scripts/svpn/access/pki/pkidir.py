"""The PKI directory: where each file lies (:class:`PkiDir`) and the lock its writers take turns with
(:func:`locked`). Nothing here reads a certificate or a key. Imports only svpn.core.

Layout under the PKI directory (default ``pki/`` at the repository root; directories are 0700)::

    ca/ca.crt           CA certificate (PEM, self-signed)
    ca/ca.key           CA private key (PKCS#8 PEM, PBES2 scrypt + AES-256-CBC under the CA passphrase, 0600)
    ca/kek.json         salt and scrypt parameters of the key that seals the users' keys (no secret, 0600)
    servers/NAME.crt    concentrator certificate (PEM)
    servers/NAME.key    concentrator private key (PKCS#8 PEM, unencrypted: deployed to the node, 0600)
    users/ID.crt        user certificate (PEM)
    users/ID.key.enc    user private key, sealed (AES-256-GCM under the users' key-encryption key, 0600)
    index.json          the issuance record (:mod:`svpn.access.pki.cert_index`)
    crl.pem             the CRL (PEM), signed by the CA

During a CA rollover (:mod:`svpn.access.pki.rollover`) the CA above is the new one, and the one it replaces
stays trusted beside it until it is retired::

    ca/previous.crt     the previous CA's certificate
    ca/previous.key     its key (same passphrase): it keeps signing its own CRL
    crl-previous.pem    the previous CA's CRL (the same revoked serials as crl.pem)
    servers/previous/NAME.crt  each concentrator's certificate from the previous CA (same key as NAME.key),
                        served to clients that trust only the previous CA
    ca/retired/SERIAL/  a retired CA: its certificate, key and last CRL, kept for the record

The formats of ``ca.key``, ``kek.json`` and ``ID.key.enc`` are described in :mod:`svpn.access.pki.keystore`.
Every file is written atomically (:func:`svpn.core.files.atomic_write`).
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from svpn.core.errors import SvpnError

Kind = Literal["ca", "server", "user"]


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

    @property
    def previous_ca_cert(self) -> Path:
        return self.path / "ca" / "previous.crt"

    @property
    def previous_ca_key(self) -> Path:
        return self.path / "ca" / "previous.key"

    @property
    def previous_crl(self) -> Path:
        return self.path / "crl-previous.pem"

    def previous_server_cert(self, name: str) -> Path:
        """A concentrator's certificate from the previous CA (during a rollover)."""
        return self.path / "servers" / "previous" / f"{name}.crt"

    def retired_dir(self, serial: str) -> Path:
        """Where a retired CA's files are kept."""
        return self.path / "ca" / "retired" / serial

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


def as_dir(pki_dir: PkiDir | Path | str) -> PkiDir:
    """*pki_dir* as a :class:`PkiDir` (the functions of the PKI modules take either)."""
    return pki_dir if isinstance(pki_dir, PkiDir) else PkiDir(pki_dir)


def require_ca(pki: PkiDir) -> None:
    """Refuse a directory without a CA certificate: nothing was ever issued there."""
    if not pki.ca_cert.exists():
        raise SvpnError(f"no CA in {pki.path}: run `svpn pki init` first")


@contextmanager
def locked(pki_dir: PkiDir | Path, timeout: float = 120.0, busy_message: str | None = None) -> Iterator[None]:
    """Hold the PKI directory's exclusive lock: writers take turns (a playbook issues the certificates of
    many hosts at once, and each issue reads, changes and saves index.json). The lock is a flock on the
    directory itself: no file is left behind, and it dies with the process. ``timeout=0`` does not wait;
    *busy_message* replaces the default error when the lock stays taken."""
    path = as_dir(pki_dir).path
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
