"""Agents log in and out (Flask's signed session cookie holds the name); :func:`current_agent` checks the
agents file at every request, so removing an agent ends their login at once."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import flask

from svpn.helpdesk.web import agents, audit
from svpn.helpdesk.web.state import new_csrf_token, remote_addr, state

blueprint = flask.Blueprint("login", __name__)
MAX_NAME = 64


def current_agent() -> str | None:
    """The logged-in agent's name, or None (also when the agent was removed since they logged in)."""
    name = flask.session.get("agent")
    if not name:
        return None
    if name not in agents.load(state().settings.agents_file):
        flask.session.pop("agent", None)
        return None
    return name


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a path on this site only (no other host, no scheme)."""
    if not target:
        return flask.url_for("helpdesk.search")
    parts = urlsplit(target)
    elsewhere = parts.scheme or parts.netloc or target.startswith("//") or "\\" in target
    if elsewhere or not target.startswith("/"):
        return flask.url_for("helpdesk.search")
    return target


def _page(error: str = "", status: int = 200) -> tuple[str, int]:
    nxt = safe_next(flask.request.values.get("next"))
    return flask.render_template("login.html", error=error, next=nxt), status


def _log(event: str, name: str) -> None:
    line = audit.session_line(event, agent=name, remote=remote_addr(), time=audit.now_utc())
    state().audit.write(line)


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if flask.request.method == "GET":
        return _page()
    helpdesk = state()
    name = flask.request.form.get("name", "").strip()[:MAX_NAME]
    password = flask.request.form.get("password", "")
    wait = helpdesk.throttle.wait(remote_addr(), name)
    if wait > 0:
        minutes = int(wait // 60) + 1
        return _page(
            f"Too many failed logins: try again in {minutes} min. · {minutes}분 뒤에 다시 시도하세요.", 429
        )
    known = agents.load(helpdesk.settings.agents_file)
    if not known:
        return _page("No agent exists yet: add one with `svpn helpdesk agent add NAME`.", 403)
    if not agents.verify(known, name, password):
        helpdesk.throttle.failed(remote_addr(), name)
        _log(audit.LOGIN_FAILED, name)
        time.sleep(helpdesk.settings.failed_login_delay)
        return _page("Wrong name or password. · 이름 또는 비밀번호가 틀렸습니다.", 401)
    target = safe_next(flask.request.form.get("next"))
    flask.session.clear()  # a new session: nothing from before the login carries over
    flask.session["agent"] = name
    flask.session.permanent = True
    new_csrf_token()
    _log(audit.LOGIN, name)
    return flask.redirect(target)


@blueprint.post("/logout")
def logout() -> Any:
    name = current_agent()
    flask.session.clear()
    new_csrf_token()
    if name:
        _log(audit.LOGOUT, name)
    return flask.redirect(flask.url_for("helpdesk.search"))


def to_login(next_path: str) -> Any:
    """The answer to a request that needs a logged-in agent and has none: the login page, then back."""
    return flask.redirect(flask.url_for("login.login", next=next_path))
