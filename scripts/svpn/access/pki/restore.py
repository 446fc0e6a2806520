"""``svpn pki restore``: a PKI backup (:mod:`svpn.access.pki.backup`) back into a PKI directory, or checked
without writing anything. Imports svpn.access (backup, backup_format, ca, cert_index, pkidir, validation,
clock) and svpn.core.

Nothing is written until everything that can be checked was: the passphrase and the archive's tag, each
member (:func:`svpn.access.pki.backup_format.unpack`), the CA key against the passphrase, the index, and
what the target directory holds. A target that holds another CA, or a PKI newer than the archive (a
certificate or a revocation the archive does not hold, a higher CRL number, a later issue), is refused
unless ``force``. The archive is extracted into a temp directory beside the target, loaded there as every
``svpn pki`` command loads a PKI, and renamed into place; a PKI it replaces is renamed to
``DIR.replaced-TIMESTAMP``, never deleted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from svpn.access.pki import backup_format, clock
from svpn.access.pki.backup import PkiState, files_of, is_secret, read_tree, verify_secret
from svpn.access.pki.backup_format import Header, Member
from svpn.access.pki.ca import load_ca
from svpn.access.pki.cert_index import Index
from svpn.access.pki.pkidir import locked
from svpn.access.pki.validation import validate_passphrase
from svpn.core.errors import SvpnError

Action = Literal["restored", "unchanged", "checked"]
TargetKind = Literal["absent", "empty", "same", "older", "newer", "other-ca", "not-pki"]


@dataclass(frozen=True)
class Archive:
    """An archive opened with the passphrase: its header, its members, the PKI they hold."""

    path: Path
    header: Header
    members: list[Member]
    state: PkiState
    warnings: list[str]


@dataclass(frozen=True)
class Target:
    """What the target directory holds compared with the archive, and why a restore would be refused."""

    path: Path
    kind: TargetKind
    reasons: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        """Refused without ``force``: another CA, a newer PKI, or something that is not a PKI."""
        return self.kind in ("newer", "other-ca", "not-pki")

    @property
    def kept_aside(self) -> bool:
        """A restore moves what is there aside (DIR.replaced-TIMESTAMP) rather than over it."""
        return self.kind in ("older", "newer", "other-ca", "not-pki")

    def describe(self) -> str:
        what = {
            "absent": "does not exist: the restore creates it",
            "empty": "is empty: the restore fills it",
            "same": "already holds exactly this backup: nothing to do",
            "older": "holds this CA's PKI, not newer than the backup: the restore replaces it (kept aside)",
            "newer": "holds a PKI newer than this backup",
            "other-ca": "holds another CA's PKI",
            "not-pki": "is not empty and holds no PKI",
        }[self.kind]
        return f"{self.path} {what}" + (f": {'; '.join(self.reasons)}" if self.reasons else "")


@dataclass(frozen=True)
class RestoreResult:
    action: Action
    archive: Archive
    target: Target
    replaced: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "file": str(self.archive.path),
            "dir": str(self.target.path),
            "target": {"kind": self.target.kind, "reasons": self.target.reasons},
            "replaced": None if self.replaced is None else str(self.replaced),
            **self.archive.header.meta,
            "warnings": self.archive.warnings,
        }


def read_archive(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise SvpnError(f"backup {path} cannot be read ({err.strerror or err.__class__.__name__})") from None


def open_archive(path: Path, passphrase: str | None) -> Archive:
    """The archive at *path*, authenticated with the CA passphrase, its members checked, its CA key opened
    with the passphrase and its index parsed (in memory: nothing is written)."""
    secret = validate_passphrase(passphrase)
    header, payload = backup_format.open_sealed(read_archive(path), secret, str(path))
    members = backup_format.unpack(payload)
    files = files_of(members)
    where = f"backup {path}"
    state = PkiState.from_files(files, where)
    return Archive(Path(path), header, members, state, verify_secret(files, secret, where))


def compare_target(archive: Archive, target: Path) -> Target:
    """What restoring *archive* into *target* would do (reads the target; writes nothing)."""
    if not target.exists():
        return Target(target, "absent")
    if not target.is_dir():
        raise SvpnError(f"--dir {target} is not a directory: give the PKI directory to restore into")
    if not any(target.iterdir()):
        return Target(target, "empty")
    files = {name: _read_if_file(target / name) for name in ("ca/ca.crt", "index.json", "crl.pem")}
    if files["ca/ca.crt"] is None:
        return Target(target, "not-pki", ["no ca/ca.crt"])
    try:
        there = PkiState.from_files(files, str(target))
    except SvpnError as err:
        return Target(target, "not-pki", [str(err)])
    ours = archive.state
    if there.ca_key_id != ours.ca_key_id:
        return Target(
            target,
            "other-ca",
            [f"its CA is {there.ca_subject} (key sha256 {there.ca_key_id[:16]}…), the backup's is "
             f"{ours.ca_subject} (key sha256 {ours.ca_key_id[:16]}…)"],
        )
    reasons = newer_reasons(there, ours)
    if reasons:
        return Target(target, "newer", reasons)
    if _same_tree(target, archive.members):
        return Target(target, "same")
    return Target(target, "older")


def newer_reasons(there: PkiState, ours: PkiState) -> list[str]:
    """Why the PKI *there* is newer than the archive's (*ours*): an empty list if it is not."""
    reasons = []
    our_status = ours.statuses()
    extra = [r for r in there.certs if str(r.get("serial")) not in our_status]
    if extra:
        stamps = [str(r["issued_at"]) for r in extra if r.get("issued_at")]
        newest = f" (the newest issued {max(stamps, key=clock.parse_iso)})" if stamps else ""
        reasons.append(f"it has {_count(len(extra), 'certificate')} issued after this backup was made{newest}")
    revoked = [
        serial
        for serial, status in there.statuses().items()
        if status == "revoked" and our_status.get(serial, "revoked") != "revoked"
    ]
    if revoked:
        were = "was" if len(revoked) == 1 else "were"
        reasons.append(f"{_count(len(revoked), 'certificate')} {were} revoked after this backup was made")
    if there.crl_number > ours.crl_number:
        reasons.append(f"its CRL number is {there.crl_number}, the backup's {ours.crl_number}")
    mine, theirs = ours.newest_issue, there.newest_issue
    if not extra and theirs and (mine is None or clock.parse_iso(theirs) > clock.parse_iso(mine)):
        reasons.append(f"its newest certificate was issued {theirs}, the backup's {mine or 'never'}")
    return reasons


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _read_if_file(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.is_file() else None
    except OSError:
        return None


def _same_tree(target: Path, members: list[Member]) -> bool:
    try:
        there = read_tree(target)
    except SvpnError:
        return False
    return [(m.name, m.kind, m.mode, m.data) for m in there] == [
        (m.name, m.kind, _restored_mode(m), m.data) for m in members
    ]


def _restored_mode(member: Member) -> int:
    return member.mode & 0o600 if member.kind == "file" and is_secret(member.name) else member.mode


# --------------------------------------------------------------------------- restore


def restore(
    path: Path, target: Path, passphrase: str | None, *, force: bool = False, check_only: bool = False
) -> RestoreResult:
    """Restore the archive at *path* into the PKI directory *target* (see the module), or with
    *check_only* say what a restore would do and write nothing."""
    archive = open_archive(path, passphrase)
    target = Path(target).absolute()
    if check_only:
        return RestoreResult("checked", archive, compare_target(archive, target))
    try:
        if not target.exists():
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            return _install(archive, compare_target(archive, target), force, passphrase)
        busy = f"{target} is in use by another svpn process: try again"
        with locked(target, timeout=10.0, busy_message=busy):
            return _install(archive, compare_target(archive, target), force, passphrase)
    except OSError as err:  # a full disk, a read-only or foreign directory: said in one line
        where = f" ({err.filename})" if err.filename else ""
        raise SvpnError(
            f"--dir {target} could not be restored: {err.strerror or err.__class__.__name__}{where}; "
            "nothing was changed"
        ) from None


def _install(archive: Archive, target: Target, force: bool, passphrase: str | None) -> RestoreResult:
    if target.kind == "same":
        return RestoreResult("unchanged", archive, target)
    if target.refused and not force:
        raise SvpnError(
            f"refusing to restore {archive.path}: {target.describe()}. --force restores it and keeps what "
            f"is there as {target.path}.replaced-TIMESTAMP"
        )
    staging = Path(tempfile.mkdtemp(prefix=f".{target.path.name}.restore-", dir=target.path.parent))
    try:
        extract(archive.members, staging)
        _load_check(staging, passphrase)
        os.sync()  # every file on disk before the rename makes it the PKI
        replaced = _aside(target.path) if target.kept_aside else None
        if replaced is not None:
            os.rename(target.path, replaced)
        try:
            os.rename(staging, target.path)  # over an empty directory, or where nothing is
        except OSError:
            if replaced is not None:
                os.rename(replaced, target.path)
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return RestoreResult("restored", archive, target, replaced)


def _load_check(root: Path, passphrase: str | None) -> None:
    """The extracted PKI loads as every svpn command loads it: the CA with the passphrase, the index."""
    Index.load(root)
    load_ca(root, passphrase)


def extract(members: list[Member], root: Path) -> None:
    """Write *members* under the existing empty directory *root*: files created (never followed through a
    link), their modes (keys 0600 whatever the archive says) and mtimes, directories last."""
    for member in members:
        path = root / member.name
        if member.kind == "dir":
            path.mkdir(mode=0o700)
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(member.data)
            os.fchmod(handle.fileno(), _restored_mode(member))
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
    for member in reversed([m for m in members if m.kind == "dir"]):
        path = root / member.name
        path.chmod(member.mode)
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
    root.chmod(0o700)


def _aside(target: Path) -> Path:
    stamp = clock.now().strftime("%Y%m%dT%H%M%SZ")
    candidate = target.with_name(f"{target.name}.replaced-{stamp}")
    number = 1
    while candidate.exists():
        candidate = target.with_name(f"{target.name}.replaced-{stamp}-{number}")
        number += 1
    return candidate
