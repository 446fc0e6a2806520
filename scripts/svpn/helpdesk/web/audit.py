"""The helpdesk's audit log: one JSON line per agent action and per login, appended and synced to disk
before the page answers.

A line: ``{"time": "2026-01-31T09:15:02Z", "agent": "mina", "remote": "198.18.0.10", "action":
"rebuild-bundle", "user_id": "u1001", "result": "ok", "message": "...", "message_ko": "..."}``. A bundle's
new password (:attr:`ActionResult.secret`) is never written: the line is built from named fields only, and a
message that happens to contain the secret has it blotted out.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path

from svpn.core.errors import SvpnError
from svpn.helpdesk.answers import ActionResult

LOGIN, LOGIN_FAILED, LOGOUT = "login", "login-failed", "logout"
REDACTED = "[redacted]"


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def action_line(result: ActionResult, *, agent: str, remote: str, time: str) -> str:
    """The audit line of an agent's action (no trailing newline)."""

    def clean(text: str) -> str:
        return text.replace(result.secret, REDACTED) if result.secret else text

    return json.dumps(
        {
            "time": time,
            "agent": agent,
            "remote": remote,
            "action": result.action,
            "user_id": result.user_id,
            "result": "ok" if result.ok else "failed",
            "message": clean(result.message.en),
            "message_ko": clean(result.message.ko),
        },
        ensure_ascii=False,
    )


def session_line(event: str, *, agent: str, remote: str, time: str) -> str:
    """The audit line of a login, a failed login or a logout."""
    result = "failed" if event == LOGIN_FAILED else "ok"
    return json.dumps(
        {"time": time, "agent": agent, "remote": remote, "action": event, "user_id": "", "result": result},
        ensure_ascii=False,
    )


class AuditLog:
    """Appends lines to the audit file (created 0600), each synced to disk before :meth:`write` returns."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def check(self) -> None:
        """Fail now, with a clear message, if the audit log cannot be written (before the server starts)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
        except OSError as err:
            raise SvpnError(f"audit log {str(self.path)!r} cannot be written: {err.strerror}") from None

    def write(self, line: str) -> None:
        data = (line.replace("\n", " ") + "\n").encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)  # one write of one line: O_APPEND keeps lines whole
                os.fsync(fd)
            finally:
                os.close(fd)
