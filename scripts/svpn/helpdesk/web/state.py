"""What the web page's modules share: its settings, the state kept in ``app.extensions``, the loopback test
and the session's CSRF token."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import flask

from svpn.helpdesk.answers import Backend
from svpn.helpdesk.web.agents import LoginThrottle
from svpn.helpdesk.web.audit import AuditLog

EXTENSION = "svpn_helpdesk"


def is_loopback(address: str) -> bool:
    """Whether *address* (an IP address, as a socket gives it) is this machine's loopback."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


@dataclass(frozen=True)
class Settings:
    agents_file: Path
    audit_log: Path
    bind: str = "127.0.0.1"  # the address the server listens on; off loopback every page needs a login
    secret_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    failed_login_delay: float = 1.0  # seconds a failed login waits before it answers
    session_hours: float = 8.0  # a login lasts this long (or until the server restarts)

    @property
    def remote(self) -> bool:
        """Bound off loopback: reachable from other machines, so every page needs a login."""
        return not is_loopback(self.bind)


@dataclass
class PageState:
    """What the views share."""

    backend: Backend
    settings: Settings
    audit: AuditLog
    throttle: LoginThrottle


def state() -> PageState:
    return flask.current_app.extensions[EXTENSION]


def csrf_token() -> str:
    """The session's CSRF token (made on first use), for every POST form."""
    token = flask.session.get("csrf")
    if not token:
        token = flask.session["csrf"] = secrets.token_urlsafe(32)
    return token


def new_csrf_token() -> str:
    """A fresh token (at login and logout, so a token seen before does not outlive the session it was in)."""
    token = flask.session["csrf"] = secrets.token_urlsafe(32)
    return token


def remote_addr() -> str:
    """The address the request came from: waitress's socket peer (no proxy header is trusted)."""
    return flask.request.remote_addr or ""
