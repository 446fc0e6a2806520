"""The staff roster (who may use the VPN) and its difference from what the PKI has issued.

A roster is CSV (a header row, then one person per row) or YAML (a list of mappings, or a mapping with a
``users:`` list). Columns/keys: ``id``, ``name``, ``email``, ``department`` (all four must be present;
``department`` may be empty; other columns are ignored, so an HR export can be used as it is). The file is
UTF-8 (a byte-order mark, as Excel writes, is accepted).

Parsing collects *every* problem with its line number before anything else happens: a malformed roster
raises :class:`RosterError`, one line per problem, and nothing is issued or revoked. IDs and e-mail
addresses are unique; e-mail addresses ignoring case, as each is a user's IKE identity (the ID rule allows
lower case only).

:func:`diff` compares the roster with the current user certificates and says, per ID, what to do: ``add``
(no certificate), ``renew`` (expiring within the window, expired, e-mail changed, no user certificate
policy, files missing),
``update`` (name or department changed: index only), ``revoke`` (no longer listed) or ``unchanged``.
It is pure: the caller supplies the index records and the file checks.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from svpn.access.pki.cert_index import Index, held_email
from svpn.access.pki.cert_policy import USER_CERT_POLICY
from svpn.access.pki.validation import validate_email, validate_full_name, validate_id
from svpn.core.errors import SvpnError

COLUMNS = ("id", "name", "email", "department")
Action = Literal["add", "renew", "update", "revoke", "unchanged"]
MAX_DEPARTMENT = 128


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    email: str
    department: str
    line: int


@dataclass(frozen=True)
class Roster:
    path: Path
    people: tuple[Person, ...]

    def by_id(self) -> dict[str, Person]:
        return {p.id: p for p in self.people}


class RosterError(SvpnError):
    """Every problem in a roster, one line each (``FILE:LINE: problem``)."""

    def __init__(self, path: Path, problems: list[tuple[int, str]]) -> None:
        self.path = path
        self.problems = sorted(problems, key=lambda p: p[0])
        count = len(self.problems)
        head = f"roster {path} has {count} problem{'s' if count != 1 else ''}; nothing was issued or revoked"
        lines = [
            f"{path}:{line}: {message}" if line else f"{path}: {message}" for line, message in self.problems
        ]
        super().__init__("\n".join([head, *lines]))


# --------------------------------------------------------------------------- parsing


def load(path: Path | str) -> Roster:
    """Parse and validate a CSV or YAML roster; :class:`RosterError` lists every problem."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".yml", ".yaml"):
        raise SvpnError(f"roster {str(path)!r} has an unknown format: use a .csv, .yml or .yaml file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise SvpnError(f"roster {str(path)!r} cannot be read: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise RosterError(path, [(line, "is not valid UTF-8 text (save the roster as UTF-8)")]) from None
    rows, problems = _read_csv(text) if suffix == ".csv" else _read_yaml(text)
    people = _validate(rows, problems)
    if problems:
        raise RosterError(path, problems)
    return Roster(path, tuple(people))


Row = tuple[int, dict[str, Any]]


def _read_csv(text: str) -> tuple[list[Row], list[tuple[int, str]]]:
    problems: list[tuple[int, str]] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return [], [(1, f"the file is empty: expected a header row with {', '.join(COLUMNS)}")]
    except csv.Error as err:
        return [], [(1, f"is not valid CSV ({err})")]
    names = [h.strip().lower() for h in header]
    for name in sorted({n for n in names if n and names.count(n) > 1}):
        problems.append((1, f"column {name!r} appears more than once in the header"))
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        columns = ", ".join(repr(c) for c in missing)
        problems.append(
            (
                1,
                f"missing column{'s' if len(missing) > 1 else ''} {columns}: the header "
                f"must name {', '.join(COLUMNS)} (found: {', '.join(names) or 'nothing'})",
            )
        )
        return [], problems
    rows: list[Row] = []
    previous_end = reader.line_num
    while True:
        start = previous_end + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            problems.append((start, f"is not valid CSV ({err})"))
            break
        previous_end = reader.line_num
        if not any(v.strip() for v in values):
            continue  # blank line
        if len(values) > len(names):
            problems.append((start, f"has {len(values)} values but the header has {len(names)} columns"))
            continue
        row = {name: value for name, value in zip(names, values, strict=False) if name in COLUMNS}
        rows.append((start, row))
    return rows, problems


class _LineLoader(yaml.SafeLoader):
    """A safe loader that records the line of each mapping under the key ``__line__``."""


def _mapping_with_line(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def _read_yaml(text: str) -> tuple[list[Row], list[tuple[int, str]]]:
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        reason = getattr(err, "problem", None) or str(err).splitlines()[0]
        return [], [(line, f"is not valid YAML ({reason})")]
    if isinstance(data, dict) and "users" in data:
        data = data["users"]
    if not isinstance(data, list):
        return [], [
            (
                1,
                "expected a list of users (or a mapping with a 'users:' list), each with "
                f"{', '.join(COLUMNS)}",
            )
        ]
    rows: list[Row] = []
    problems: list[tuple[int, str]] = []
    for position, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            problems.append((0, f"entry {position} is not a mapping with {', '.join(COLUMNS)}"))
            continue
        line = int(item.pop("__line__", 0))
        row: dict[str, Any] = {}
        for key in COLUMNS:
            if key not in item:
                continue
            value = item[key]
            if value is None:
                value = ""
            if key == "id" and not isinstance(value, str):
                problems.append((line, f'id {value!r} is not a string: quote it in YAML (id: "{value}")'))
                row = {}
                break
            if isinstance(value, dict | list):
                problems.append((line, f"{key} must be a single value, not a {type(value).__name__}"))
                row = {}
                break
            row[key] = str(value)
        else:
            rows.append((line, row))
    return rows, problems


def _validate(rows: Iterable[Row], problems: list[tuple[int, str]]) -> list[Person]:
    people: list[Person] = []
    first_line: dict[str, int] = {}
    first_email: dict[str, tuple[int, str, str]] = {}  # lower-cased e-mail: (line, id, e-mail as written)
    for line, row in rows:
        missing = [c for c in COLUMNS if c not in row or (row[c] is None)]
        if missing:
            problems.append(
                (
                    line,
                    f"missing field{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)}",
                )
            )
        values = {k: (row.get(k) or "").strip() for k in COLUMNS}
        good = not missing
        checks: list[tuple[str, Callable[[str], Any]]] = [
            ("id", lambda v: validate_id(v, "id")),
            ("name", validate_full_name),
            ("email", lambda v: validate_email(v, "email")),
            ("department", _validate_department),
        ]
        cleaned: dict[str, str] = {}
        for key, check in checks:
            if key in missing:
                continue
            if key != "department" and not values[key]:
                problems.append((line, f"{key} is empty"))
                good = False
                continue
            try:
                result = check(values[key])
            except SvpnError as err:
                problems.append((line, str(err)))
                good = False
                continue
            cleaned[key] = result if isinstance(result, str) else values[key]
        uid = values["id"]
        if uid and "id" not in missing:
            if uid in first_line:
                problems.append((line, f"id {uid!r} is listed twice (first on line {first_line[uid]})"))
                good = False
            else:
                first_line[uid] = line
        email = cleaned.get("email")
        if email:
            # The e-mail is the user's IKE identity: two rows with one address (in any case) would evict
            # each other's IKE SA on a concentrator (unique = replace).
            seen = first_email.get(email.lower())
            if seen is not None:
                problems.append(
                    (
                        line,
                        f"email {email!r} (id {uid!r}) is also on line {seen[0]} (id {seen[1]!r}, "
                        f"{seen[2]!r}): e-mail addresses must be unique, ignoring case, as each is a "
                        "user's IKE identity",
                    )
                )
                good = False
            else:
                first_email[email.lower()] = (line, uid, email)
        if good:
            people.append(
                Person(cleaned["id"], cleaned["name"], cleaned["email"], cleaned["department"], line)
            )
    if not people and not problems:
        problems.append((0, "lists no users: refusing to revoke everyone (an empty roster is a mistake)"))
    return people


def _validate_department(value: str) -> str:
    if len(value) > MAX_DEPARTMENT or (value and not value.isprintable()):
        raise SvpnError(f"department {value!r} is not valid: at most {MAX_DEPARTMENT} printable characters")
    return value


# --------------------------------------------------------------------------- diff


@dataclass(frozen=True)
class Change:
    """What to do with one user ID; ``person`` is the roster row (None for a revocation)."""

    id: str
    action: Action
    reason: str = ""
    person: Person | None = None
    record: Mapping[str, Any] | None = field(default=None, compare=False)

    def describe(self) -> str:
        who = f"{self.id}"
        if self.person is not None:
            who += f" ({self.person.name} <{self.person.email}>)"
        return f"{self.action}: {who}" + (f": {self.reason}" if self.reason else "")


def current_users(index: Index) -> dict[str, dict[str, Any]]:
    """The current (not superseded) record of every user ID in the index."""
    current: dict[str, dict[str, Any]] = {}
    for record in index.certs:
        if record["kind"] == "user" and record["status"] != "superseded":
            current[record["name"]] = record
    return current


def diff(
    roster: Roster,
    current: Mapping[str, Mapping[str, Any]],
    *,
    now: dt.datetime,
    renew_within: dt.timedelta,
    files_present: Callable[[str], bool] = lambda _uid: True,
    other_issuer: Callable[[str, Mapping[str, Any]], str] = lambda _uid, _record: "",
) -> list[Change]:
    """Per user ID, what to do so the PKI matches the roster (roster order, then revocations by ID).

    Raises :class:`RosterError` if the roster lists an ID that was revoked (IDs are never reused), or an
    e-mail address (any case) that the valid, unexpired certificate of another ID the roster still lists
    carries: both would have one IKE identity. The address of an ID the roster drops is free, as this
    sync revokes that ID. *other_issuer(ID, record)* names the CA that issued the ID's certificate if that
    is not the current CA (after a CA rollover: renewed, so the bundle comes from the new CA), else "".
    """
    problems: list[tuple[int, str]] = []
    changes: list[Change] = []
    listed = roster.by_id()
    holders = _email_holders(current, now)
    for person in roster.people:
        others = [h for h in holders.get(person.email.lower(), []) if h["name"] != person.id]
        holder = next((h for h in others if h["name"] in listed), None)
        if holder is not None:
            # The holder stays (it is listed): both certificates would carry one IKE identity. A holder
            # the roster no longer lists is revoked by this very sync, which frees its address.
            other = listed[holder["name"]]
            problems.append(
                (
                    person.line,
                    f"email {person.email!r} (id {person.id!r}) belongs to id {holder['name']!r} in the "
                    f"PKI (certificate {holder['serial']}, valid until {str(holder['not_after'])[:10]}), "
                    f"which line {other.line} keeps (as {other.email!r}): that certificate keeps the "
                    "IKE identity until it is revoked; give this person another e-mail, or drop "
                    f"{holder['name']!r} from the roster (the sync revokes it) and list it under a new id",
                )
            )
            continue
        record = current.get(person.id)
        if record is None:
            changes.append(Change(person.id, "add", "new user", person))
            continue
        if record["status"] == "revoked":
            problems.append(
                (
                    person.line,
                    f"id {person.id!r} was revoked on {record['revoked_at'][:10]}; "
                    "IDs are never reused: give this person a new id",
                )
            )
            continue
        reason = _renew_reason(person, record, now, renew_within, files_present, other_issuer)
        if reason:
            changes.append(Change(person.id, "renew", reason, person, record))
        elif (record.get("full_name") or "") != person.name or (record.get("department") or "") != (
            person.department
        ):
            changes.append(Change(person.id, "update", "name or department changed", person, record))
        else:
            changes.append(Change(person.id, "unchanged", "", person, record))
    if problems:
        raise RosterError(roster.path, problems)
    for uid in sorted(set(current) - set(listed)):
        record = current[uid]
        if record["status"] == "valid":
            changes.append(Change(uid, "revoke", "no longer in the roster", None, record))
    return changes


def _renew_reason(
    person: Person,
    record: Mapping[str, Any],
    now: dt.datetime,
    renew_within: dt.timedelta,
    files_present: Callable[[str], bool],
    other_issuer: Callable[[str, Mapping[str, Any]], str],
) -> str:
    """Why the current certificate of a listed person must be renewed ("" if it need not)."""
    not_after = dt.datetime.fromisoformat(str(record["not_after"]).replace("Z", "+00:00"))
    if not_after <= now:
        return f"expired {not_after:%Y-%m-%d}"
    if not_after - now <= renew_within:
        return f"expires {not_after:%Y-%m-%d}"
    if (record.get("email") or "") != person.email:
        return f"e-mail changed from {record.get('email') or 'none'}"
    if USER_CERT_POLICY.dotted_string not in (record.get("policies") or []):
        # Issued before user certificates carried it: concentrators that require it refuse the user.
        return "certificate lacks the user policy"
    if not files_present(person.id):
        return "certificate or key file missing"
    if issuer := other_issuer(person.id, record):
        return f"issued by the previous CA {issuer!r}"
    return ""


def _email_holders(
    current: Mapping[str, Mapping[str, Any]], now: dt.datetime
) -> dict[str, list[Mapping[str, Any]]]:
    """Lower-cased e-mail -> the valid, unexpired current records that carry it (an IKE identity)."""
    holders: dict[str, list[Mapping[str, Any]]] = {}
    for record in current.values():
        email = held_email(record, now)
        if email is not None:
            holders.setdefault(email, []).append(record)
    return holders
