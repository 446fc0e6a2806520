"""The file format of a PKI backup (``svpn pki backup``): a tar of the PKI directory, gzip-compressed and
sealed with AES-256-GCM under a key derived from the CA passphrase, behind a header anyone can read.
Pure (bytes in, bytes out); imports svpn.access.pki.keystore and svpn.core.

Layout::

    MAGIC (16 bytes, "SVPN-PKI-BACKUP\\n") | version (2 bytes, big-endian) | header length (4 bytes, BE)
    | header (JSON, UTF-8) | AES-256-GCM(key, nonce, tar.gz, AAD = every byte before this one)

The header names the KDF (scrypt, its N, r, p and 16-byte random salt), the 12-byte nonce, a 16-byte
``check``, the payload's size and the metadata of the PKI (:mod:`svpn.access.pki.backup` writes it: when,
from where, the CA, the index, the CRL, the files). scrypt yields 48 bytes: the first 32 are the key, the
last 16 are ``check``, so a wrong passphrase is told apart from an altered archive before decryption
(guessing the passphrase from it costs as much as from the CA key). The whole header is the GCM associated
data: changing one byte of it, or of the payload, makes the archive refuse to open. The header is readable
without the passphrase (``svpn pki restore FILE --check``) but only authenticated with it.

The tar holds the directories and regular files of the PKI directory under relative names (``ca``,
``ca/ca.key``, ``index.json``...), each with its mode and mtime; :func:`unpack` refuses anything else
(absolute names, ``..``, links, devices, a name twice, a file whose directory is not in the archive).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import json
import os
import struct
import tarfile
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from svpn.access.pki import keystore
from svpn.core.errors import SvpnError

MAGIC = b"SVPN-PKI-BACKUP\n"
FORMAT_VERSION = 1
CIPHER = "AES-256-GCM"
PAYLOAD = "tar.gz"
_PREFIX = struct.Struct(">HI")  # version, header length
_NONCE = 12
_TAG = 16
_MAX_HEADER = 1 << 20
MAX_PAYLOAD = (1 << 31) - 1 - _TAG  # what one AES-GCM call of `cryptography` takes
# scrypt parameters an archive may ask for: enough for any sane cost, not a way to exhaust the machine.
_MAX_N, _MAX_R, _MAX_P, _MAX_MEMORY = 1 << 22, 32, 16, 1 << 30


@dataclass(frozen=True)
class Member:
    """One entry of the archive: a directory or a regular file, under a relative POSIX name."""

    name: str
    kind: Literal["dir", "file"]
    mode: int  # permission bits only (0o777)
    mtime: int
    data: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Header:
    """The readable part of an archive: the KDF and nonce, and the PKI's metadata (not secret)."""

    version: int
    kdf: keystore.ScryptParams
    salt: bytes
    nonce: bytes
    check: bytes
    payload_bytes: int
    meta: dict[str, Any]
    raw: bytes  # every byte before the ciphertext: the associated data


# --------------------------------------------------------------------------- tar


def pack(members: list[Member]) -> bytes:
    """*members* as tar.gz bytes (directories before what they hold: give them in that order)."""
    buffer = io.BytesIO()
    # compresslevel 6: most of gzip's gain on PEM and JSON at a third of level 9's time.
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.mode, info.mtime = member.mode & 0o777, member.mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if member.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(member.data)
                tar.addfile(info, io.BytesIO(member.data))
    return buffer.getvalue()


def unpack(payload: bytes) -> list[Member]:
    """The members of tar.gz *payload*, each checked (see the module); SvpnError names the first bad one."""
    members: list[Member] = []
    seen: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
            for info in tar:
                name = _checked_name(info.name)
                if info.isdir():
                    kind: Literal["dir", "file"] = "dir"
                elif info.isreg():
                    kind = "file"
                else:
                    raise SvpnError(
                        f"archive member {info.name!r} is a {_type_name(info)}: a PKI backup holds regular "
                        "files and directories only"
                    )
                if name in seen:
                    raise SvpnError(f"archive member {name!r} appears twice: each name may appear once")
                parent = name.rpartition("/")[0]
                if parent and seen.get(parent) != "dir":
                    raise SvpnError(
                        f"archive member {name!r} comes before its directory {parent!r}: a directory "
                        "precedes what it holds"
                    )
                data = b""
                if kind == "file":
                    extracted = tar.extractfile(info)
                    data = extracted.read() if extracted is not None else b""
                seen[name] = kind
                members.append(Member(name, kind, info.mode & 0o777, int(info.mtime), data))
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as err:
        raise SvpnError(f"the archive's payload is not a readable tar.gz ({err.__class__.__name__})") from None
    return members


def _checked_name(raw: str) -> str:
    rule = "a relative name without '..', '.' or empty parts"
    name = raw.rstrip("/") if raw != "/" else raw
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or "\x00" in name:
        raise SvpnError(f"archive member name {raw!r} is not valid: {rule}")
    if any(part in ("", ".", "..") for part in parts):
        raise SvpnError(f"archive member name {raw!r} is not valid: {rule}")
    return name


def _type_name(info: tarfile.TarInfo) -> str:
    if info.issym():
        return f"symbolic link to {info.linkname!r}"
    if info.islnk():
        return f"hard link to {info.linkname!r}"
    if info.isfifo():
        return "FIFO"
    return "device" if info.isdev() else f"member of tar type {info.type!r}"


# --------------------------------------------------------------------------- sealing


def _derive(secret: bytes, salt: bytes, params: keystore.ScryptParams) -> tuple[bytes, bytes]:
    out = params.derive(secret, salt, 48)
    return out[:32], out[32:]


def seal(payload: bytes, meta: dict[str, Any], secret: bytes, params: keystore.ScryptParams) -> bytes:
    """The archive: header (with *meta*) then *payload* sealed under a key derived from *secret*."""
    if len(payload) > MAX_PAYLOAD:
        raise SvpnError(
            f"the PKI's archive is {len(payload)} bytes: a backup holds at most {MAX_PAYLOAD} bytes"
        )
    salt, nonce = os.urandom(16), os.urandom(_NONCE)
    key, check = _derive(secret, salt, params)
    header = {
        "cipher": CIPHER,
        "kdf": {"name": "scrypt", "n": params.n, "r": params.r, "p": params.p, "salt": _b64(salt)},
        "check": _b64(check),
        "nonce": _b64(nonce),
        "payload": {"format": PAYLOAD, "bytes": len(payload)},
        "meta": meta,
    }
    text = json.dumps(header, indent=1, sort_keys=True).encode() + b"\n"
    raw = MAGIC + _PREFIX.pack(FORMAT_VERSION, len(text)) + text
    return raw + AESGCM(key).encrypt(nonce, payload, raw)


def read_header(data: bytes, source: str) -> Header:
    """The header of archive *data* (not authenticated yet: :func:`open_sealed` does that).
    *source* names the archive in errors."""
    if not data.startswith(MAGIC):
        seen = data[: len(MAGIC)]
        raise SvpnError(
            f"{source} is not an svpn PKI backup: it starts with {seen!r}, a backup with {MAGIC!r}"
        )
    start = len(MAGIC) + _PREFIX.size
    if len(data) < start:
        raise SvpnError(f"{source} is truncated: {len(data)} bytes, shorter than a backup's header")
    version, length = _PREFIX.unpack(data[len(MAGIC) : start])
    if version != FORMAT_VERSION:
        raise SvpnError(
            f"{source} is a backup of format version {version}: this svpn reads version {FORMAT_VERSION}"
        )
    if length > _MAX_HEADER or len(data) < start + length:
        raise SvpnError(
            f"{source} is truncated or damaged: its header length is {length} bytes, the file has "
            f"{max(len(data) - start, 0)} after the prefix"
        )
    raw = data[: start + length]
    try:
        doc = json.loads(data[start : start + length])
        return _header(doc, version, raw)
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise SvpnError(f"{source}'s header is damaged ({err.__class__.__name__}: {err})") from None


def _header(doc: Any, version: int, raw: bytes) -> Header:
    if doc["cipher"] != CIPHER or doc["kdf"]["name"] != "scrypt" or doc["payload"]["format"] != PAYLOAD:
        raise ValueError(f"expected cipher {CIPHER}, kdf scrypt, payload {PAYLOAD}")
    kdf = doc["kdf"]
    n, r, p = (kdf[k] for k in ("n", "r", "p"))
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (n, r, p)):
        raise ValueError("scrypt n, r and p must be positive integers")
    if n & (n - 1) or n < 2 or n > _MAX_N or r > _MAX_R or p > _MAX_P or 128 * n * r > _MAX_MEMORY:
        raise ValueError(f"scrypt N={n} r={r} p={p} is out of range (N a power of two up to 2^22, r<=32, p<=16)")
    salt, nonce, check = _unb64(kdf["salt"]), _unb64(doc["nonce"]), _unb64(doc["check"])
    if len(salt) < 16 or len(nonce) != _NONCE or len(check) != 16:
        raise ValueError("salt must be 16 bytes or more, nonce 12 and check 16")
    size = doc["payload"]["bytes"]
    if not isinstance(size, int) or size < 0 or not isinstance(doc["meta"], dict):
        raise ValueError("payload bytes must be a whole number and meta an object")
    return Header(version, keystore.ScryptParams(n, r, p), salt, nonce, check, size, doc["meta"], raw)


def open_sealed(data: bytes, secret: bytes, source: str) -> tuple[Header, bytes]:
    """The header and the payload (tar.gz) of archive *data*, authenticated; SvpnError says whether the
    passphrase is wrong, the archive truncated, or altered."""
    header = read_header(data, source)
    body = data[len(header.raw) :]
    if len(body) != header.payload_bytes + _TAG:
        raise SvpnError(
            f"{source} is truncated or damaged: {len(body)} bytes of payload, its header says "
            f"{header.payload_bytes + _TAG}"
        )
    key, check = _derive(secret, header.salt, header.kdf)
    if check != header.check:
        raise SvpnError(f"CA passphrase is wrong for {source}: it does not open this backup")
    try:
        payload = AESGCM(key).decrypt(header.nonce, body, header.raw)
    except InvalidTag:
        raise SvpnError(
            f"{source} was altered: the passphrase is right but the header or the payload does not "
            "authenticate (AES-256-GCM tag); use another copy of the backup"
        ) from None
    return header, payload


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise TypeError("expected base64 text")
    return base64.b64decode(text, validate=True)
