"""The PKI's audit trail: every change to certificates, the CRL and users' bundles, appended to
``audit.jsonl`` in the PKI directory with its time, operator and reason, each entry chained to the one
before by a SHA-256 hash, so an edited, removed or reordered entry is found (:func:`verify_chain`).

One JSON object per line::

    {"seq": 7, "time": "2026-11-30T14:02:11Z", "operator": "kim", "reason": "left the city",
     "action": "revoke", "subject": "user frank", "details": {"serial": "1f..."},
     "prev": "<hash of entry 6>", "hash": "<sha256 of this entry without 'hash'>"}

The first entry's ``prev`` is :data:`GENESIS`. The hash covers the entry's canonical JSON (sorted keys, no
spaces, UTF-8) without its own ``hash`` field. ``index.json`` keeps the newest entry's ``seq`` and ``hash``
(:class:`svpn.access.pki.cert_index.Index`), so a log cut short after its last index write is found too.

Who acts and why is set once per command with :func:`acting_as` (the CLI's ``--reason``; the operator is
``SVPN_OPERATOR``, else the user behind sudo, else the login name). Writers hold the PKI directory's lock
(:func:`svpn.access.pki.pkidir.locked`), so appends do not interleave. Imports only svpn.access.pki.clock,
pkidir and svpn.core.
"""

from __future__ import annotations

import contextvars
import getpass
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from svpn.access.pki import clock
from svpn.access.pki.pkidir import PkiDir, as_dir
from svpn.core.errors import SvpnError

AUDIT_FILE = "audit.jsonl"
GENESIS = "0" * 64
_TAIL_BYTES = 1 << 16  # the newest entry is found in the file's last 64 KiB (an entry is well under that)


@dataclass(frozen=True)
class Actor:
    """Who makes the changes of one command, and why."""

    operator: str
    reason: str = ""


@dataclass(frozen=True)
class Event:
    """One change, before it is chained: what was done (``issue``, ``renew``, ``revoke``, ``crl``,
    ``bundle``...), to what (``user ID``, ``server NAME``, ``ca NAME``, ``crl``) and the facts of it."""

    action: str
    subject: str
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    time: str  # ISO 8601, UTC
    operator: str
    action: str
    subject: str
    reason: str
    details: dict[str, Any]
    prev: str
    hash: str


@dataclass(frozen=True)
class ChainCheck:
    """The verdict on a log: ``ok``, how many entries, and else the first bad entry's seq and why."""

    ok: bool
    entries: int
    first_bad: int | None = None
    problem: str = ""
    head: str = GENESIS  # the newest entry's hash (GENESIS for an empty log)


_ACTOR: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("svpn_audit_actor", default=None)


def default_operator() -> str:
    """``SVPN_OPERATOR``, else the user who ran sudo, else the login name."""
    for name in ("SVPN_OPERATOR", "SUDO_USER"):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def current_actor() -> Actor:
    return _ACTOR.get() or Actor(default_operator())


@contextmanager
def acting_as(operator: str | None = None, reason: str = "") -> Iterator[Actor]:
    """Record the changes made inside as *operator*'s (default: :func:`default_operator`) for *reason*."""
    actor = Actor(operator or default_operator(), reason.strip())
    token = _ACTOR.set(actor)
    try:
        yield actor
    finally:
        _ACTOR.reset(token)


def audit_path(pki: PkiDir | Path) -> Path:
    return as_dir(pki).path / AUDIT_FILE


def entry_hash(fields: Mapping[str, Any]) -> str:
    """SHA-256 of an entry's canonical JSON without its ``hash`` field."""
    body = {key: value for key, value in fields.items() if key != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _last_entry(path: Path) -> AuditEntry | None:
    if not path.exists():
        return None
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(max(0, size - _TAIL_BYTES))
        lines = [line for line in handle.read().splitlines() if line.strip()]
    if not lines:
        return None
    try:
        return _entry(json.loads(lines[-1]))
    except (ValueError, TypeError, KeyError) as err:
        raise SvpnError(
            f"audit log {str(path)!r}: its last line is not an audit entry ({err.__class__.__name__}); "
            "nothing is appended to a damaged log: check it with `svpn pki audit`"
        ) from None


def _entry(data: Mapping[str, Any]) -> AuditEntry:
    return AuditEntry(
        seq=int(data["seq"]),
        time=str(data["time"]),
        operator=str(data["operator"]),
        action=str(data["action"]),
        subject=str(data["subject"]),
        reason=str(data["reason"]),
        details=dict(data["details"]),
        prev=str(data["prev"]),
        hash=str(data["hash"]),
    )


def append(pki: PkiDir | Path, events: Sequence[Event], actor: Actor | None = None) -> AuditEntry | None:
    """Chain *events* onto the log (one write, one fsync) and return the newest entry (None: no events)."""
    if not events:
        return None
    path = audit_path(pki)
    last = _last_entry(path)
    seq, prev = (last.seq, last.hash) if last is not None else (0, GENESIS)
    who = actor or current_actor()
    stamp = clock.iso(clock.now())
    lines, entry = [], None
    for event in events:
        seq += 1
        fields: dict[str, Any] = {
            "seq": seq, "time": stamp, "operator": who.operator, "reason": who.reason,
            "action": event.action, "subject": event.subject, "details": dict(event.details), "prev": prev,
        }  # fmt: skip
        fields["hash"] = prev = entry_hash(fields)
        entry = _entry(fields)
        lines.append(json.dumps(fields, sort_keys=True, ensure_ascii=False) + "\n")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, "".join(lines).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return entry


def read_entries(path: Path) -> list[AuditEntry]:
    """Every entry of the log (``[]`` when it does not exist); a line that is not an entry is an error."""
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entries.append(_entry(json.loads(line)))
        except (ValueError, TypeError, KeyError) as err:
            raise SvpnError(
                f"audit log {str(path)!r} line {number}: not an audit entry ({err.__class__.__name__})"
            ) from None
    return entries


def verify_chain(path: Path, head: Mapping[str, Any] | None = None) -> ChainCheck:
    """Recompute the chain. *head* (``{"seq", "hash"}``, as index.json keeps it) must be in the log."""
    return read_log(path, head)[1]


def read_log(path: Path, head: Mapping[str, Any] | None = None) -> tuple[list[AuditEntry] | None, ChainCheck]:
    """Every entry (None when a line is not an entry) and the chain's verdict (:func:`verify_chain`), from
    one read of the log: the entries past a broken link are still read, for a report to show."""
    if not path.exists():
        return [], _check_head(0, GENESIS, {}, head)
    entries: list[AuditEntry] = []
    check: ChainCheck | None = None
    prev, count, hashes = GENESIS, 0, {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        count += 1
        try:
            fields = json.loads(line)
            entry = _entry(fields)
        except (ValueError, TypeError, KeyError) as err:
            problem = f"line {number} is not an audit entry ({err.__class__.__name__})"
            return None, check or ChainCheck(False, count, count, problem)
        entries.append(entry)
        if check is None:
            check = _link_problem(entry, fields, count, prev)
            prev = hashes[entry.seq] = entry.hash
    return entries, check or _check_head(count, prev, hashes, head)


def _link_problem(entry: AuditEntry, fields: Mapping[str, Any], count: int, prev: str) -> ChainCheck | None:
    """What is wrong with entry number *count* of the chain, following the hash *prev*; None if nothing."""
    if entry.seq != count:
        return ChainCheck(
            False, count, count, f"entry {count} says seq {entry.seq}: an entry is missing or moved"
        )
    if entry.prev != prev:
        return ChainCheck(False, count, count, f"entry {count} does not follow entry {count - 1}'s hash")
    if entry_hash(fields) != entry.hash:
        return ChainCheck(False, count, count, f"entry {count} was changed after it was written")
    return None


def _check_head(
    count: int, last: str, hashes: Mapping[int, str], head: Mapping[str, Any] | None
) -> ChainCheck:
    if head and int(head.get("seq", 0)) > 0:
        seq, want = int(head["seq"]), str(head.get("hash", ""))
        if seq > count:
            return ChainCheck(
                False, count, count + 1, f"the log ends at entry {count}; index.json records entry {seq}"
            )
        if hashes.get(seq) != want:
            return ChainCheck(False, count, seq, f"entry {seq} is not the one index.json records")
    return ChainCheck(True, count, head=last)


def to_json(entry: AuditEntry) -> dict[str, Any]:
    return asdict(entry)
