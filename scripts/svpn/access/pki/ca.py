"""The CA once its passphrase opened it: :class:`CA` (certificate and decrypted key) and :class:`Unlock`,
what a load keeps for the writes that follow (the users' key-encryption key, derived once; an older CA key
file's move to the current KDF). :func:`load_ca` for commands that sign, :func:`open_user_keys` for those
that only open users' keys. Nothing here writes until :meth:`Unlock.before_write`. Imports svpn.access
(keystore, pkidir, certs, validation, user_keys) and svpn.core.

The CA passphrase is never printed nor stored. A PKI made before keys were sealed is moved on the first
write after a CA load: a CA key under an older KDF is re-encrypted under
:data:`svpn.access.pki.keystore.CA_KDF` (same passphrase, atomically), and every ``users/ID.key`` left in clear is
sealed into ``users/ID.key.enc`` and removed.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from svpn.access.pki import keystore
from svpn.access.pki.certs import PrivateKey, load_cert, public_der
from svpn.access.pki.pkidir import PkiDir, as_dir
from svpn.access.pki.user_keys import clear_user_key_ids, seal_clear_user_keys
from svpn.access.pki.validation import validate_passphrase
from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write


class CA(NamedTuple):
    """The CA certificate and its decrypted key: what signs certificates and CRLs."""

    cert: x509.Certificate
    key: PrivateKey
    unlock: Unlock | None = None  # from load_ca: the users' KEK; the CA key file's move to the current KDF
    # During a CA rollover: the previous CA (ca/previous.*), still trusted; it signs its own CRL.
    previous: CA | None = None

    def user_kek(self) -> keystore.Kek:
        """The key that seals the users' keys (derived from the CA passphrase on first use, once)."""
        if self.unlock is None:
            raise SvpnError(
                "the users' keys are sealed under a key derived from the CA passphrase: load the CA with "
                "its passphrase (svpn.access.pki.ca.load_ca) to issue user certificates"
            )
        return self.unlock.kek()


class Unlock:
    """What a CA load keeps for the writes that follow (never written anywhere): the passphrase, until
    the users' key-encryption key is derived (on first use, once per run) and the CA key file is at the
    current KDF.

    :meth:`before_write` runs once, under the PKI's lock, before the first write after the load: a CA key
    under an older KDF is re-encrypted under :data:`svpn.access.pki.keystore.CA_KDF` (same passphrase,
    atomically), and users' keys left in clear are sealed
    (:func:`svpn.access.pki.user_keys.seal_clear_user_keys`). Worker processes get :meth:`with_kek`: the KEK,
    never the passphrase, and nothing to move.
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
        return cls(as_dir(pki), None, kek=kek)

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
        if clear_user_key_ids(self.pki):
            seal_clear_user_keys(self.pki, self.kek())


def load_ca(pki_dir: PkiDir | Path, passphrase: str | None) -> CA:
    """The CA certificate and decrypted key; one-line errors for a missing CA or a wrong passphrase.

    Nothing is written here. The CA keeps an :class:`Unlock`: the users' KEK when a user key is sealed or
    opened (:meth:`CA.user_kek`), and, on the first write, the move of an older CA key file to the current
    KDF. A passphrase shorter than :data:`svpn.access.pki.validation.MIN_PASSPHRASE` still opens a CA that was
    made with it.
    """
    pki = as_dir(pki_dir)
    _require_ca_files(pki)
    secret = validate_passphrase(passphrase)
    cert = load_cert(pki.ca_cert)
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
    if public_der(key.public_key()) != public_der(cert.public_key()):
        raise SvpnError(f"CA key {pki.ca_key} does not match the CA certificate {pki.ca_cert}")
    old = None if ca_key_is_current(pem) else pem  # re-encrypted on the first write (Unlock.before_write)
    previous = _load_previous(pki, secret) if pki.previous_ca_key.exists() else None
    return CA(cert, key, Unlock(pki, secret, ca_key=key, old_ca_pem=old), previous)


def _load_previous(pki: PkiDir, secret: bytes) -> CA:
    """The previous CA of a rollover (ca/previous.crt and .key, under the same passphrase)."""
    cert = load_cert(pki.previous_ca_cert)
    if cert is None:
        raise SvpnError(f"previous CA certificate {pki.previous_ca_cert} is missing or not a PEM certificate")
    try:
        key = serialization.load_pem_private_key(pki.previous_ca_key.read_bytes(), password=secret)
    except (OSError, ValueError, TypeError):
        raise SvpnError(
            f"previous CA key {pki.previous_ca_key} does not open with the CA passphrase: "
            "`svpn pki ca-rollover` kept it under the same passphrase; restore it from the backup"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) or public_der(
        key.public_key()
    ) != public_der(cert.public_key()):
        raise SvpnError(f"previous CA key {pki.previous_ca_key} does not match {pki.previous_ca_cert}")
    return CA(cert, key)


def ca_key_is_current(pem: bytes) -> bool:
    """True if a CA key file is under scrypt at least as costly as :data:`svpn.access.pki.keystore.CA_KDF`."""
    try:
        return keystore.kdf_info(pem).current()
    except ValueError:
        return False


def open_user_keys(pki_dir: PkiDir | Path, passphrase: str | None) -> Unlock:
    """The users' keys without the CA key, for a command that signs nothing (``svpn profiles build``):
    an :class:`Unlock` whose KEK is derived now, the passphrase checked against ``ca/kek.json``. A PKI
    from before keys were sealed has no ``kek.json`` yet: the passphrase is checked against the CA key,
    then the file is made."""
    pki = as_dir(pki_dir)
    _require_ca_files(pki)
    secret = validate_passphrase(passphrase)
    if not pki.kek.exists():
        unlock = load_ca(pki, passphrase).unlock
        assert unlock is not None
    else:
        unlock = Unlock(pki, secret, kek=_load_kek(pki, secret, verified=False))
    unlock.kek()
    return unlock


def _require_ca_files(pki: PkiDir) -> None:
    if not pki.ca_cert.exists() or not pki.ca_key.exists():
        raise SvpnError(f"no CA in {pki.path}: run `svpn pki init` first")


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
