"""The helpdesk's web page as a Flask application: :func:`create_app` wires a :class:`Backend` (the real one
is svpn.helpdesk.service.Helpdesk), the agents file and the audit log into the views of :mod:`.views` and
:mod:`.login`, on Flask's Jinja templates in ``templates/``.

Who may do what:
- bound to a loopback address (the default), anyone on this machine may search; the two actions need a
  logged-in agent;
- bound to any other address (``Settings.bind``), or asked from a non-loopback address, every page needs a
  logged-in agent (`svpn helpdesk serve` refuses such a bind while no agent exists).
Every POST carries the session's CSRF token. Answers carry personal data: no page is cached.
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Any

import flask
from werkzeug.exceptions import HTTPException, InternalServerError

from svpn.core.errors import SvpnError
from svpn.helpdesk.answers import Backend
from svpn.helpdesk.web import login, views
from svpn.helpdesk.web.agents import LoginThrottle
from svpn.helpdesk.web.audit import AuditLog
from svpn.helpdesk.web.state import (
    EXTENSION,
    PageState,
    Settings,
    csrf_token,
    is_loopback,
    remote_addr,
    state,
)

CSRF_REFUSED = "The form was not sent by this page or has expired: reload the page and try again."
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def needs_login_to_read(remote_setting: bool, peer: str) -> bool:
    """Whether a request from *peer* (its address) needs a logged-in agent to see any page: always when the
    page is bound off loopback, and for a peer that is not this machine whatever the bind says."""
    return remote_setting or not is_loopback(peer)


def _check_request() -> Any:
    if flask.request.endpoint == "static":
        return None
    if flask.request.method == "POST":
        sent = flask.request.form.get("csrf_token", "")
        expected = flask.session.get("csrf", "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            flask.abort(400, CSRF_REFUSED)
    open_endpoint = flask.request.endpoint in ("login.login", None)
    remote = needs_login_to_read(state().settings.remote, remote_addr())
    if remote and not open_endpoint and login.current_agent() is None:
        return flask.redirect(flask.url_for("login.login", next=flask.request.full_path))
    return None


def _headers(response: flask.Response) -> flask.Response:
    response.headers.update(SECURITY_HEADERS)
    if flask.request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response


def _error_page(message: str, status: int) -> tuple[str, int]:
    return flask.render_template("error.html", message=message, status=status), status


def _register_errors(app: flask.Flask) -> None:
    @app.errorhandler(SvpnError)
    def backend_error(err: SvpnError) -> tuple[str, int]:
        return _error_page(str(err), 500)

    @app.errorhandler(InternalServerError)
    def internal(err: InternalServerError) -> tuple[str, int]:
        # the traceback goes to the server's log (stderr), never to the page
        return _error_page("Internal error: the server's log has the details.", 500)

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> tuple[str, int]:
        return _error_page(err.description or err.name, err.code or 500)


def _context() -> dict[str, Any]:
    args = flask.request.args
    return {
        "agent": login.current_agent(),
        "remote_mode": state().settings.remote,
        "q": args.get("q", "")[: views.MAX_QUERY],
        "address": args.get("address", "")[:64],
    }


def create_app(backend: Backend, settings: Settings) -> flask.Flask:
    """The helpdesk's web application over *backend*."""
    app = flask.Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="svpn_helpdesk",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        MAX_CONTENT_LENGTH=64 * 1024,
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.extensions[EXTENSION] = PageState(backend, settings, AuditLog(settings.audit_log), LoginThrottle())
    app.before_request(_check_request)
    app.after_request(_headers)
    app.context_processor(_context)
    app.jinja_env.filters.update(views.FILTERS)
    app.jinja_env.globals["csrf_token"] = csrf_token  # a global: the macros imported by templates see it
    _register_errors(app)
    app.register_blueprint(views.blueprint)
    app.register_blueprint(login.blueprint)
    return app
