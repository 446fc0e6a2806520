"""The users' private keys at rest: sealed in ``users/ID.key.enc`` under the users' key-encryption key (KEK,
:mod:`svpn.access.pki.keystore`), or in clear in ``users/ID.key`` in a PKI made before keys were sealed (read,
then sealed and removed on the next write: :func:`seal_clear_user_keys`). Also the one rule for writing a
new private key file (never over an existing one) and reading a clear PEM key. Imports svpn.access
(keystore, pkidir, certs, validation) and svpn.core.

A user's key is never in clear on disk after a write: a run derives the KEK once from the CA passphrase
(:class:`svpn.access.pki.ca.Unlock`) and seals or opens each user's key with it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from svpn.access.pki import keystore
from svpn.access.pki.certs import PrivateKey, public_der
from svpn.access.pki.pkidir import PkiDir, as_dir
from svpn.access.pki.validation import ID_RE
from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write

# The users' KEK, or how to get it: a CA derives it on first use only (svpn.access.pki.ca.CA.user_kek).
KekSource = keystore.Kek | Callable[[], keystore.Kek]


def clear_user_key_ids(pki: PkiDir) -> list[str]:
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
    pki = as_dir(pki_dir)
    done = []
    for uid in clear_user_key_ids(pki):
        clear, sealed = pki.clear_key_path(uid), pki.key_path("user", uid)
        try:
            key = existing_key(clear)
        except SvpnError:
            continue
        if key is None:
            continue
        if sealed.exists():  # an interrupted earlier move: both must hold the same key
            if public_der(_open_sealed(pki, kek, uid).public_key()) != public_der(key.public_key()):
                raise SvpnError(
                    f"user {uid!r} has two different keys, {clear} (in clear) and {sealed}: move away the "
                    f"one that does not match users/{uid}.crt"
                )
        else:
            write_new_key(sealed, kek.seal(uid, key), durable=False)
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
    pki = as_dir(pki_dir)
    return pki.key_path("user", user_id).exists() or pki.clear_key_path(user_id).exists()


def read_user_key(pki_dir: PkiDir | Path, kek: keystore.Kek, user_id: str) -> PrivateKey:
    """A user's private key: opened from ``users/ID.key.enc`` with *kek* (see
    :meth:`svpn.access.pki.ca.CA.user_kek` and :func:`svpn.access.pki.ca.open_user_keys`), or read from
    ``users/ID.key`` in a PKI from before keys were sealed."""
    pki = as_dir(pki_dir)
    key, _in_clear = user_key(pki, kek, user_id)
    if key is None:
        raise SvpnError(f"ID {user_id!r} has no key in {pki.path / 'users'}: issue its certificate first")
    return key


def user_key(pki: PkiDir, kek: KekSource, user_id: str) -> tuple[PrivateKey | None, bool]:
    """The user's key (None if there is none) and whether it lay in clear. With a function for *kek* (a
    CA's :meth:`~svpn.access.pki.ca.CA.user_kek`), the KEK is derived only if a sealed key must be opened."""
    if pki.key_path("user", user_id).exists():
        return _open_sealed(pki, kek if isinstance(kek, keystore.Kek) else kek(), user_id), False
    key = existing_key(pki.clear_key_path(user_id))
    return key, key is not None


def write_new_key(path: Path, pem: bytes, durable: bool = True) -> None:
    """Write a new private key file (0600); a key that appeared there meanwhile is never overwritten."""
    try:
        atomic_write(path, pem, 0o600, overwrite=False, durable=durable)
    except FileExistsError:
        raise SvpnError(f"key {path} appeared while issuing; it was left untouched, run again") from None


def existing_key(path: Path) -> PrivateKey | None:
    """The clear PEM key in *path* (a server's, or a user's from before keys were sealed); None if there is
    no file. A file that is not such a key is an error: it is never replaced."""
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
