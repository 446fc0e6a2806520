"""The helpdesk agents who may log in to the web page: a small JSON file of name → password hash, and the
throttle that slows down guessing.

The file (mode 0600, written atomically) holds werkzeug's salted hashes (scrypt by default), never a
password: ``{"version": 1, "agents": {"NAME": {"password_hash": "...", "added": "ISO 8601 UTC"}}}``. The page
reads it at every login and every request of a logged-in agent, so ``svpn helpdesk agent add`` and
``remove`` take effect without a restart.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from svpn.access.pki.validation import validate_id
from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write

FORMAT_VERSION = 1
MIN_PASSWORD = 12
# Checked against when the name is unknown, so an unknown name costs the same time as a wrong password.
_NOBODY = generate_password_hash("no agent has this password")


@dataclass(frozen=True)
class Agent:
    name: str
    password_hash: str
    added: str  # ISO 8601, UTC


def validate_name(name: str) -> str:
    return validate_id(name, "agent name")


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise SvpnError(
            f"agent password is too short ({len(password)} characters): at least {MIN_PASSWORD} characters"
        )
    return password


def load(path: Path) -> dict[str, Agent]:
    """The agents in *path*; none if the file does not exist."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise SvpnError(f"agents file {str(path)!r} cannot be read: {err.strerror}") from None
    try:
        data = json.loads(text)
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"version {data.get('version')!r}, expected {FORMAT_VERSION}")
        return {
            name: Agent(name, entry["password_hash"], entry.get("added", ""))
            for name, entry in data["agents"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise SvpnError(
            f"agents file {str(path)!r} is not valid ({err}): expected "
            '{"version": 1, "agents": {"NAME": {"password_hash": "..."}}}, '
            "as `svpn helpdesk agent add` writes"
        ) from None


def _save(path: Path, agents: dict[str, Agent]) -> None:
    data = {
        "version": FORMAT_VERSION,
        "agents": {
            a.name: {"password_hash": a.password_hash, "added": a.added}
            for a in sorted(agents.values(), key=lambda a: a.name)
        },
    }
    atomic_write(Path(path), json.dumps(data, indent=2) + "\n", mode=0o600)


def add(path: Path, name: str, password: str, *, replace: bool = False) -> Agent:
    """Add agent *name* (or give them a new password with *replace*)."""
    agents = load(path)
    validate_name(name)
    if name in agents and not replace:
        raise SvpnError(f"agent {name!r} exists in {str(path)!r}: pass --replace to set a new password")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    agent = Agent(name, generate_password_hash(validate_password(password)), now)
    agents[name] = agent
    _save(path, agents)
    return agent


def remove(path: Path, name: str) -> None:
    agents = load(path)
    if name not in agents:
        known = ", ".join(sorted(agents)) or "none"
        raise SvpnError(f"agent {name!r} is not in {str(path)!r} (agents: {known})")
    del agents[name]
    _save(path, agents)


def verify(agents: dict[str, Agent], name: str, password: str) -> bool:
    """Whether *password* is *name*'s; as slow for an unknown name as for a wrong password (werkzeug compares
    the hashes in constant time)."""
    agent = agents.get(name)
    ok = check_password_hash(agent.password_hash if agent else _NOBODY, password)
    return ok and agent is not None


class LoginThrottle:
    """At most *limit* failed logins per remote address and per agent name within *window* seconds; after
    that, logins from that address or for that name are refused until the window has passed."""

    def __init__(
        self, limit: int = 5, window: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self._clock = limit, window, clock
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, ()) if now - t < self.window]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def wait(self, remote: str, name: str) -> float:
        """Seconds until a login from *remote* for *name* may be tried again (0: now)."""
        with self._lock:
            now = self._clock()
            waits = [
                self.window - (now - times[-self.limit])
                for key in (f"addr:{remote}", f"name:{name}")
                if len(times := self._recent(key, now)) >= self.limit
            ]
            return max(waits, default=0.0)

    def failed(self, remote: str, name: str) -> None:
        with self._lock:
            now = self._clock()
            for key in (f"addr:{remote}", f"name:{name}"):
                self._failures[key] = [*self._recent(key, now), now]
            for key in list(self._failures):  # forget what has expired, so the table stays small
                self._recent(key, now)
