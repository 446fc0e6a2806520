"""The helpdesk page's decisions, through Flask's test client (the browser tests show the page itself): who
must log in, CSRF, the login throttle, the actions' audit lines, errors as messages."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask
import pytest
from svpn_testing.helpdesk_fake import FakeHelpdesk

from svpn.helpdesk.web import agents
from svpn.helpdesk.web.app import Settings, create_app

AGENT, PASSWORD = "mina", "correct horse battery staple"
LOCAL, LAN = "127.0.0.1", "198.18.0.10"


@dataclass
class Page:
    app: flask.Flask
    backend: FakeHelpdesk
    settings: Settings

    def client(self, remote_addr: str = LOCAL) -> Any:
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = remote_addr
        return client

    def audit(self) -> list[dict[str, Any]]:
        path = self.settings.audit_log
        return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def agents_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("agents") / "agents.json"
    agents.add(path, AGENT, PASSWORD)
    return path


def make_page(tmp_path: Path, agents_file: Path, bind: str = LOCAL, delay: float = 0.0) -> Page:
    backend = FakeHelpdesk()
    settings = Settings(agents_file, tmp_path / "audit.jsonl", bind=bind, failed_login_delay=delay)
    return Page(create_app(backend, settings), backend, settings)


@pytest.fixture
def page(tmp_path: Path, agents_file: Path) -> Page:
    return make_page(tmp_path, agents_file)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the form"
    return found.group(1)


def log_in(client: Any, password: str = PASSWORD, next_path: str = "/") -> Any:
    token = csrf_of(client.get("/login").get_data(as_text=True))
    form = {"name": AGENT, "password": password, "csrf_token": token, "next": next_path}
    return client.post("/login", data=form)


def action_token(client: Any, user_id: str) -> str:
    return csrf_of(client.get(f"/user/{user_id}").get_data(as_text=True))


def test_on_loopback_searching_needs_no_login(page: Page) -> None:
    response = page.client().get("/", query_string={"q": "김지우"})
    assert response.status_code == 200
    assert "u1001" in response.get_data(as_text=True)


def test_a_request_from_another_machine_needs_a_login_even_on_a_loopback_bind(page: Page) -> None:
    response = page.client(LAN).get("/", query_string={"q": "김지우"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert page.client(LAN).get("/user/u1001").status_code == 302


def test_off_loopback_every_page_needs_a_login(tmp_path: Path, agents_file: Path) -> None:
    page = make_page(tmp_path, agents_file, bind="0.0.0.0")
    client = page.client()  # even from this machine
    for path in ("/", "/?q=kim", "/user/u1001"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login"), path
    assert client.get("/login").status_code == 200
    assert client.get("/static/helpdesk.css").status_code == 200  # the login page's style
    assert log_in(client).status_code == 302
    assert client.get("/", query_string={"q": "김지우"}).status_code == 200


def test_actions_need_an_agent_even_on_loopback(page: Page) -> None:
    client = page.client()
    token = csrf_of(client.get("/login").get_data(as_text=True))  # the session's token, nobody logged in
    for action in ("end-sessions", "rebuild-bundle"):
        response = client.post(f"/user/u1001/{action}", data={"csrf_token": token, "confirm": "yes"})
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")
    assert page.backend.calls == []
    assert page.audit() == []


def test_a_post_without_the_sessions_csrf_token_is_refused(page: Page) -> None:
    client = page.client()
    assert log_in(client).status_code == 302
    good = action_token(client, "u1001")
    for form in ({}, {"csrf_token": ""}, {"csrf_token": good[:-1] + ("A" if good[-1] != "A" else "B")}):
        response = client.post("/user/u1001/end-sessions", data=form)
        assert response.status_code == 400
        assert "reload the page" in response.get_data(as_text=True)
    other = page.client()  # another browser: its own session, so its own token
    assert log_in(other).status_code == 302
    assert other.post("/user/u1001/end-sessions", data={"csrf_token": good}).status_code == 400
    assert page.backend.calls == []
    assert [e["action"] for e in page.audit()] == ["login", "login"]
    assert client.post("/user/u1001/end-sessions", data={"csrf_token": good}).status_code == 200
    assert page.backend.calls == [("end-sessions", "u1001")]


def test_the_login_form_needs_its_csrf_token_too(page: Page) -> None:
    client = page.client()
    client.get("/login")
    response = client.post("/login", data={"name": AGENT, "password": PASSWORD})
    assert response.status_code == 400
    assert page.audit() == []


def test_rebuild_asks_the_agent_to_confirm_the_callers_identity(page: Page) -> None:
    client = page.client()
    log_in(client)
    response = client.post("/user/u1001/rebuild-bundle", data={"csrf_token": action_token(client, "u1001")})
    assert response.status_code == 400
    assert page.backend.calls == []


def test_an_action_the_backend_refuses_is_shown_and_audited_as_failed(page: Page) -> None:
    client = page.client()
    log_in(client)
    token = action_token(client, "u1001")
    response = client.post("/user/nobody/end-sessions", data={"csrf_token": token})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-ok="no"' in html and "is not in the PKI" in html and "Traceback" not in html
    last = page.audit()[-1]
    assert (last["action"], last["user_id"], last["result"]) == ("end-sessions", "nobody", "failed")
    assert "is not in the PKI" in last["message"]


def test_the_audit_line_of_a_rebuild_never_holds_the_password(page: Page) -> None:
    client = page.client(LOCAL)
    log_in(client)
    token = action_token(client, "u1001")
    response = client.post("/user/u1001/rebuild-bundle", data={"csrf_token": token, "confirm": "yes"})
    assert response.status_code == 200
    secret = page.backend.last_secret
    assert secret in response.get_data(as_text=True)  # shown once, to the agent
    assert response.headers["Cache-Control"] == "no-store"
    assert secret not in page.settings.audit_log.read_text()
    last = page.audit()[-1]
    assert {k: last[k] for k in ("agent", "remote", "action", "user_id", "result")} == {
        "agent": AGENT,
        "remote": LOCAL,
        "action": "rebuild-bundle",
        "user_id": "u1001",
        "result": "ok",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", last["time"])
    # the PKI's audit trail would name the agent and where the request came from
    actor = page.backend.last_actor
    assert (actor.operator, actor.reason) == (f"helpdesk:{AGENT}", f"helpdesk rebuild-bundle from {LOCAL}")


def test_failed_logins_are_delayed_audited_and_then_throttled(tmp_path: Path, agents_file: Path) -> None:
    page = make_page(tmp_path, agents_file, delay=0.2)
    client = page.client()
    started = time.monotonic()
    assert log_in(client, password="wrong password!").status_code == 401
    assert time.monotonic() - started >= 0.2
    page.app.extensions["svpn_helpdesk"].settings = Settings(
        page.settings.agents_file, page.settings.audit_log, failed_login_delay=0
    )
    for _ in range(4):
        assert log_in(client, password="wrong password!").status_code == 401
    assert log_in(client).status_code == 429  # even the right password, for now
    assert [e["action"] for e in page.audit()] == ["login-failed"] * 5
    assert page.client("127.0.0.2").get("/").status_code == 200  # searching is not throttled


def test_a_removed_agents_login_ends_at_once(tmp_path: Path) -> None:
    agents_file = tmp_path / "agents.json"
    agents.add(agents_file, AGENT, PASSWORD)
    page = make_page(tmp_path, agents_file)
    client = page.client()
    log_in(client)
    token = action_token(client, "u1001")
    agents.add(agents_file, "other", PASSWORD)
    agents.remove(agents_file, AGENT)
    response = client.post("/user/u1001/end-sessions", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert page.backend.calls == []


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"]
)
def test_the_login_goes_back_to_this_site_only(page: Page, target: str) -> None:
    response = log_in(page.client(), next_path=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_backend_errors_are_messages_not_tracebacks(page: Page) -> None:
    page.backend.fail = "inventory 'x' cannot be read"
    response = page.client().get("/", query_string={"q": "kim"})
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "inventory &#39;x&#39; cannot be read" in html and "Traceback" not in html


def test_an_unexpected_error_shows_no_traceback(page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(query: str) -> Any:
        raise KeyError("secret internals")

    monkeypatch.setattr(page.backend, "whereis", broken)
    response = page.client().get("/", query_string={"q": "kim"})
    html = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "secret internals" not in html and "Traceback" not in html and "server&#39;s log" in html


def test_a_callers_address_must_be_an_ip_address(page: Page) -> None:
    response = page.client().get("/", query_string={"q": "kim", "address": "my home"})
    assert response.status_code == 400
    assert "is not an IP address" in response.get_data(as_text=True)


def test_an_unknown_user_id_is_a_404_page(page: Page) -> None:
    response = page.client().get("/user/u100")  # "u100" matches u1001 and u1002 in part, none exactly
    assert response.status_code == 404
    assert "No user has the ID" in response.get_data(as_text=True)


def test_every_page_says_what_the_browser_may_do_with_it(page: Page) -> None:
    response = page.client().get("/", query_string={"q": "김지우"})
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
