"""The page's views: the search (whereis, then explain), one user's answer, and the agents' two actions.

Search flow: nothing asked → the form; several users match → the list, each linking to its own answer; one
user → their answer (where they are connected, why their attempts failed, the caller's checklist); nobody
(or only an address) → what explain says about the query or the address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import flask

from svpn.access.pki.audit import acting_as
from svpn.core.errors import SvpnError
from svpn.helpdesk.answers import ActionResult, Explanation, Unreachable, User, WhereisAnswer, Words
from svpn.helpdesk.web import audit, login
from svpn.helpdesk.web.state import remote_addr, state

blueprint = flask.Blueprint("helpdesk", __name__)
MAX_QUERY = 200
END_SESSIONS, REBUILD_BUNDLE = "end-sessions", "rebuild-bundle"

STATUS_WORDS = {
    "valid": Words("유효", "valid"),
    "revoked": Words("폐기됨", "revoked"),
    "superseded": Words("새 인증서로 대체됨", "superseded by a newer certificate"),
    "expired": Words("만료됨", "expired"),
}
ACTION_WORDS = {
    END_SESSIONS: Words("세션 종료", "End sessions"),
    REBUILD_BUNDLE: Words("새 비밀번호로 번들 재생성", "Rebuild bundle with a new password"),
}


def _size(count: int) -> str:
    """Bytes for people: 1.5 MiB."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def _status(status: str) -> Words:
    return STATUS_WORDS.get(status, Words(status, status))


FILTERS: dict[str, Callable[..., Any]] = {"size": _size, "status_words": _status}


class BadInput(SvpnError):
    """A search the page refuses before asking the backend (shown with the form, status 400)."""


def _inputs() -> tuple[str, str]:
    query = flask.request.args.get("q", "").strip()
    address = flask.request.args.get("address", "").strip()
    if len(query) > MAX_QUERY:
        raise BadInput(f"search {query[:40]!r}…: at most {MAX_QUERY} characters")
    if address:
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            raise BadInput(
                f"caller's address {address[:64]!r} is not an IP address: give it as 203.0.113.7 or "
                "2001:db8::7, or leave it empty · 공인 IP 주소 형식이 아닙니다"
            ) from None
    return query, address


def _unreachable(*groups: tuple[Unreachable, ...]) -> list[Unreachable]:
    seen: dict[str, Unreachable] = {}
    for group in groups:
        for item in group:
            seen.setdefault(item.host, item)
    return list(seen.values())


def _answer(
    query: str, address: str, user: User | None, whereis: WhereisAnswer | None, explanation: Explanation
) -> str:
    if whereis is not None and user is not None:
        sessions = whereis.sessions_of(user.id)
    else:
        sessions = list(explanation.sessions)
    return flask.render_template(
        "answer.html",
        q=query,
        address=address,
        user=user or explanation.user,
        sessions=sessions,
        explanation=explanation,
        unreachable=_unreachable(whereis.unreachable if whereis else (), explanation.unreachable),
    )


@blueprint.get("/")
def search() -> Any:
    try:
        query, address = _inputs()
    except BadInput as err:
        return flask.render_template("search.html", error=str(err)), 400
    if not query and not address:
        return flask.render_template("search.html", error="")
    backend = state().backend
    whereis = backend.whereis(query) if query else None
    if whereis is not None and len(whereis.users) > 1:
        return flask.render_template("choose.html", q=query, address=address, whereis=whereis)
    user = whereis.users[0] if whereis is not None and whereis.users else None
    explanation = backend.explain(user.id if user else query, address)
    return _answer(query, address, user, whereis, explanation)


@blueprint.get("/user/<user_id>")
def user(user_id: str) -> Any:
    try:
        _query, address = _inputs()
    except BadInput as err:
        return flask.render_template("search.html", error=str(err)), 400
    backend = state().backend
    whereis = backend.whereis(user_id)
    found = next((u for u in whereis.users if u.id == user_id), None)
    if found is None:
        flask.abort(404, f"No user has the ID {user_id!r}. · 해당 ID의 사용자가 없습니다.")
    return _answer(user_id, address, found, whereis, backend.explain(user_id, address))


def _act(action: str, user_id: str, run: Callable[[str], ActionResult]) -> Any:
    agent = login.current_agent()
    if agent is None:
        return login.to_login(flask.url_for("helpdesk.user", user_id=user_id))
    try:
        # a PKI change (a rebuilt bundle) goes to the PKI's audit trail as this agent's, from this address
        with acting_as(f"helpdesk:{agent}", f"helpdesk {action} from {remote_addr()}"):
            result = run(user_id)
    except SvpnError as err:
        result = ActionResult(action, user_id, False, Words(str(err), str(err)))
    except Exception as err:
        why = f"internal error ({err.__class__.__name__}); the server's log has the details"
        failed = Words("내부 오류", why)
        _audit(ActionResult(action, user_id, False, failed), agent)
        raise
    _audit(result, agent)
    return flask.render_template("result.html", result=result, title=ACTION_WORDS[action])


def _audit(result: ActionResult, agent: str) -> None:
    line = audit.action_line(result, agent=agent, remote=remote_addr(), time=audit.now_utc())
    state().audit.write(line)


@blueprint.post("/user/<user_id>/end-sessions")
def end_sessions(user_id: str) -> Any:
    return _act(END_SESSIONS, user_id, state().backend.end_sessions)


@blueprint.post("/user/<user_id>/rebuild-bundle")
def rebuild_bundle(user_id: str) -> Any:
    if login.current_agent() is not None and flask.request.form.get("confirm") != "yes":
        flask.abort(400, "Tick the box: you verified the caller's identity. · 본인 확인을 먼저 체크하세요.")
    return _act(REBUILD_BUNDLE, user_id, state().backend.rebuild_bundle)
