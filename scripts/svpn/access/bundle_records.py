"""What a users sync keeps beside the bundles: the helpdesk's CSV of bundle passwords (:class:`PasswordFile`,
outside the bundle directory) and which bundle was built from which certificate and settings
(:class:`BundleState`, ``BUNDLES/.svpn-bundles.json``). Both are loaded once, changed in memory and saved
once, atomically (0600). Imports only svpn.core.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write

STATE_FILE = ".svpn-bundles.json"
STATE_VERSION = 1
PASSWORD_COLUMNS = ("id", "name", "email", "password", "serial", "created")


def _runs_in_a_spreadsheet(value: str) -> bool:
    """True if a spreadsheet would take the cell for a formula: it starts with ``=``, ``+``, ``-``, ``@``,
    a tab, CR or LF, or with one of ``=+-@`` after leading whitespace."""
    return value[:1] in ("=", "+", "-", "@", "\t", "\r", "\n") or value.lstrip()[:1] in ("=", "+", "-", "@")


def csv_cell(value: str) -> str:
    """*value* as a cell a spreadsheet shows and never runs (OWASP: prefix a single quote). A value that
    is quotes then such a formula gets one more quote, so :func:`csv_value` restores every value exactly."""
    return "'" + value if _runs_in_a_spreadsheet(value.lstrip("'")) else value


def csv_value(cell: str) -> str:
    """The value :func:`csv_cell` wrote as *cell* (a cell without its quote, e.g. an older file, as it is)."""
    return cell[1:] if cell.startswith("'") and _runs_in_a_spreadsheet(cell.lstrip("'")) else cell


class PasswordFile:
    """The helpdesk's CSV of bundle passwords: ``id,name,email,password,serial,created`` (0600).

    Names and e-mail addresses come from the roster: a cell a spreadsheet would run as a formula is
    written with a leading single quote (:func:`csv_cell`), which :meth:`load` removes again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, dict[str, str]] = {}
        self.dirty = False

    @classmethod
    def load(cls, path: Path) -> PasswordFile:
        result = cls(path)
        if not path.exists():
            return result
        try:
            reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
            if tuple(reader.fieldnames or ()) != PASSWORD_COLUMNS:
                raise ValueError("header")
            for row in reader:
                values = {k: csv_value(row[k] or "") for k in PASSWORD_COLUMNS}
                result.rows[values["id"]] = values
        except (OSError, UnicodeDecodeError, ValueError, csv.Error) as err:
            raise SvpnError(
                f"passwords file {path} is unreadable or not svpn's ({err.__class__.__name__}): expected a "
                f"CSV with the header {','.join(PASSWORD_COLUMNS)}"
            ) from None
        return result

    def set(self, row: dict[str, str]) -> None:
        self.rows[row["id"]] = row
        self.dirty = True

    def remove(self, user_id: str) -> None:
        if self.rows.pop(user_id, None) is not None:
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        out = io.StringIO(newline="")
        writer = csv.DictWriter(out, fieldnames=PASSWORD_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for uid in sorted(self.rows):
            writer.writerow({k: csv_cell(self.rows[uid].get(k, "")) for k in PASSWORD_COLUMNS})
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(self.path, out.getvalue(), 0o600)
        self.dirty = False


class BundleState:
    """``BUNDLES/.svpn-bundles.json``: per user, what the current bundle was built from."""

    def __init__(self, path: Path, users: dict[str, dict[str, Any]] | None = None) -> None:
        self.path = path
        self.users = users or {}
        self.dirty = False

    @classmethod
    def load(cls, bundles_dir: Path) -> BundleState:
        path = bundles_dir / STATE_FILE
        if not path.exists():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            users = data["users"]
            if not isinstance(users, dict):
                raise TypeError("users")
        except (OSError, ValueError, TypeError, KeyError) as err:
            raise SvpnError(
                f"bundle state {path} is unreadable ({err.__class__.__name__}); delete it to "
                "rebuild every bundle (with new passwords)"
            ) from None
        return cls(path, users)

    def set(self, user_id: str, entry: dict[str, Any]) -> None:
        if self.users.get(user_id) != entry:
            self.users[user_id] = entry
            self.dirty = True

    def remove(self, user_id: str) -> None:
        if self.users.pop(user_id, None) is not None:
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        data = {"version": STATE_VERSION, "users": self.users}
        atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n", 0o600)
        self.dirty = False


def default_passwords_file(bundles: Path) -> Path:
    """Where the passwords go unless told: ``passwords.csv`` beside the bundle directory."""
    return bundles.parent / "passwords.csv"


def check_paths(bundles: Path, passwords: Path) -> None:
    """Refuse a passwords file inside the bundle directory: a bundle never carries its password."""
    b, p = bundles.resolve(), passwords.resolve()
    if p == b or b in p.parents:
        raise SvpnError(
            f"passwords file {passwords} must not be inside the bundle directory {bundles}: "
            "a bundle never carries its password"
        )
