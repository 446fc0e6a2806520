"""The helpdesk page's pure parts: the agents file, the login throttle, the audit lines, the loopback test,
and the `svpn helpdesk` commands that need no server."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Run, one_line_error

from svpn.core.errors import SvpnError
from svpn.helpdesk.answers import ActionResult, Words
from svpn.helpdesk.web import agents, audit
from svpn.helpdesk.web.app import needs_login_to_read
from svpn.helpdesk.web.state import Settings, is_loopback
from svpn.helpdesk.web.views import FILTERS

PASSWORD = "correct horse battery staple"


def test_agents_are_kept_as_hashes_in_a_0600_file(tmp_path: Path) -> None:
    path = tmp_path / "state" / "agents.json"
    agents.add(path, "mina", PASSWORD)
    agents.add(path, "joon", "another long password")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert PASSWORD not in text and "another long password" not in text
    known = agents.load(path)
    assert sorted(known) == ["joon", "mina"]
    assert agents.verify(known, "mina", PASSWORD)
    assert not agents.verify(known, "mina", "another long password")
    assert not agents.verify(known, "nobody", PASSWORD)
    agents.remove(path, "joon")
    assert sorted(agents.load(path)) == ["mina"]
    assert [p.name for p in path.parent.iterdir()] == ["agents.json"]  # no temp file left behind


def test_an_agent_is_added_once_unless_replaced(tmp_path: Path) -> None:
    path = tmp_path / "agents.json"
    agents.add(path, "mina", PASSWORD)
    with pytest.raises(SvpnError, match="--replace"):
        agents.add(path, "mina", "a different password")
    agents.add(path, "mina", "a different password", replace=True)
    assert agents.verify(agents.load(path), "mina", "a different password")


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [("Mina Kim", PASSWORD, "agent name"), ("mina", "short", "too short"), ("", PASSWORD, "agent name")],
)
def test_bad_agent_names_and_short_passwords_are_refused(
    tmp_path: Path, name: str, password: str, message: str
) -> None:
    with pytest.raises(SvpnError, match=message):
        agents.add(tmp_path / "agents.json", name, password)
    assert not (tmp_path / "agents.json").exists()


def test_removing_an_unknown_agent_names_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "agents.json"
    agents.add(path, "mina", PASSWORD)
    with pytest.raises(SvpnError, match=r"'joon' is not in .*agents: mina"):
        agents.remove(path, "joon")


@pytest.mark.parametrize("content", ["not json", "[]", '{"version": 2, "agents": {}}', '{"version": 1}'])
def test_a_broken_agents_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "agents.json"
    path.write_text(content)
    with pytest.raises(SvpnError, match=r"agents file .* is not valid"):
        agents.load(path)


def test_no_agents_file_means_no_agents(tmp_path: Path) -> None:
    assert agents.load(tmp_path / "missing.json") == {}


def test_the_throttle_refuses_after_the_limit_until_the_window_passes() -> None:
    now = [1000.0]
    throttle = agents.LoginThrottle(limit=3, window=60, clock=lambda: now[0])
    for _ in range(2):
        throttle.failed("198.18.0.10", "mina")
    assert throttle.wait("198.18.0.10", "mina") == 0
    throttle.failed("198.18.0.10", "mina")
    assert throttle.wait("198.18.0.10", "mina") == pytest.approx(60)
    assert throttle.wait("198.18.0.11", "mina") == pytest.approx(60)  # the name is held, from anywhere
    assert throttle.wait("198.18.0.10", "joon") == pytest.approx(60)  # and the address, for any name
    assert throttle.wait("198.18.0.11", "joon") == 0
    now[0] += 30
    assert throttle.wait("198.18.0.10", "mina") == pytest.approx(30)
    now[0] += 30
    assert throttle.wait("198.18.0.10", "mina") == 0
    assert throttle._failures == {}  # forgotten once expired


def test_an_action_line_has_who_what_when_and_never_the_secret() -> None:
    secret = "Zq8-new-bundle-password"
    result = ActionResult(
        "rebuild-bundle",
        "u1001",
        True,
        Words(f"새 비밀번호 {secret}", f"rebuilt with {secret}"),
        secret=secret,
    )
    line = audit.action_line(result, agent="mina", remote="127.0.0.1", time="2026-11-30T10:00:00Z")
    assert secret not in line and "\n" not in line
    assert json.loads(line) == {
        "time": "2026-11-30T10:00:00Z",
        "agent": "mina",
        "remote": "127.0.0.1",
        "action": "rebuild-bundle",
        "user_id": "u1001",
        "result": "ok",
        "message": f"rebuilt with {audit.REDACTED}",
        "message_ko": f"새 비밀번호 {audit.REDACTED}",
    }


def test_the_audit_log_appends_whole_lines_to_a_0600_file(tmp_path: Path) -> None:
    log = audit.AuditLog(tmp_path / "logs" / "audit.jsonl")
    log.check()
    for event in (audit.LOGIN, audit.LOGIN_FAILED, audit.LOGOUT):
        log.write(audit.session_line(event, agent="mina", remote="::1", time=audit.now_utc()))
    lines = [json.loads(x) for x in log.path.read_text().splitlines()]
    assert [(x["action"], x["result"]) for x in lines] == [
        ("login", "ok"),
        ("login-failed", "failed"),
        ("logout", "ok"),
    ]
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600


def test_an_audit_log_that_cannot_be_written_is_refused_before_serving(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    log = audit.AuditLog(tmp_path / "a-file" / "audit.jsonl")  # its directory is a file: even root fails
    with pytest.raises(SvpnError, match=r"audit log .* cannot be written"):
        log.check()


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("198.18.0.10", False),
        ("", False),
        ("localhost", False),  # a name, not an address: the CLI turns "localhost" into 127.0.0.1
    ],
)
def test_loopback_addresses(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_who_must_log_in_to_read() -> None:
    assert not needs_login_to_read(False, "127.0.0.1")
    assert needs_login_to_read(False, "198.18.0.10")
    assert needs_login_to_read(True, "127.0.0.1")
    assert Settings(Path("a"), Path("b"), bind="0.0.0.0").remote
    assert not Settings(Path("a"), Path("b")).remote


def test_byte_counts_for_people() -> None:
    size = FILTERS["size"]
    assert [size(0), size(1023), size(1536), size(5 * 1024**3)] == ["0 B", "1023 B", "1.5 KiB", "5.0 GiB"]


def test_serve_refuses_a_network_bind_without_agents(cli: Run, tmp_path: Path) -> None:
    code, out, err = cli("helpdesk", "serve", "--bind", "0.0.0.0", "--agents", tmp_path / "agents.json")
    assert code == 2 and out == ""
    line = one_line_error(err)
    assert "--bind 0.0.0.0" in line and "no agent" in line and "svpn helpdesk agent add" in line
    assert not (tmp_path / "agents.json").exists()


def test_serve_refuses_a_bind_that_is_not_an_address(cli: Run, tmp_path: Path) -> None:
    code, _out, err = cli("helpdesk", "serve", "--bind", "helpdesk.example", "--agents", tmp_path / "a.json")
    assert code == 2
    assert "is not an IP address" in one_line_error(err)


def test_agent_commands_add_list_and_remove(cli: Run, tmp_path: Path) -> None:
    path, secret = tmp_path / "agents.json", tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    assert cli("helpdesk", "agent", "add", "mina", "--agents", path, "--password-file", secret)[0] == 0
    assert agents.verify(agents.load(path), "mina", PASSWORD)  # the newline dropped
    code, out, _err = cli("helpdesk", "agent", "list", "--agents", path)
    assert code == 0 and out.split("\t")[0] == "mina"
    code, _out, err = cli("helpdesk", "agent", "add", "mina", "--agents", path, "--password-file", secret)
    assert code == 2 and "--replace" in one_line_error(err)
    assert cli("helpdesk", "agent", "remove", "mina", "--agents", path)[0] == 0
    assert cli("helpdesk", "agent", "list", "--agents", path)[1] == ""


def test_agent_add_prompts_for_the_password_twice(tmp_path: Path) -> None:
    from svpn.cli.helpdesk_web import helpdesk

    path = tmp_path / "agents.json"
    result = CliRunner().invoke(
        helpdesk, ["agent", "add", "joon", "--agents", str(path)], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert agents.verify(agents.load(path), "joon", PASSWORD)


def test_serve_builds_the_backend_from_its_options_and_serves_with_waitress(
    cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types

    import flask
    import waitress
    from svpn_testing.helpdesk_fake import FakeHelpdesk

    built: dict[str, object] = {}
    served: dict[str, object] = {}

    class Helpdesk(FakeHelpdesk):
        @classmethod
        def from_options(cls, **options: object) -> Helpdesk:
            built.update(options)
            return cls()

    service = types.ModuleType("svpn.helpdesk.service")
    service.Helpdesk = Helpdesk  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "svpn.helpdesk.service", service)
    monkeypatch.setattr(waitress, "serve", lambda app, **kw: served.update(app=app, **kw))
    agents.add(tmp_path / "agents.json", "mina", PASSWORD)
    (tmp_path / "inv").mkdir()
    code, _out, err = cli(
        "helpdesk", "serve", "--inventory", tmp_path / "inv", "--agents", tmp_path / "agents.json",
        "--audit-log", tmp_path / "logs" / "audit.jsonl", "--bind", "0.0.0.0", "--port", "18088",
    )  # fmt: skip
    assert code == 0, err
    assert built["inventory"] == tmp_path / "inv" and built["pki_dir"] is None
    assert set(built) == {"inventory", "pki_dir", "bundles_dir", "passwords", "vault"}
    assert (served["host"], served["port"]) == ("0.0.0.0", 18088)
    app = served["app"]
    assert isinstance(app, flask.Flask)
    settings = app.extensions["svpn_helpdesk"].settings
    assert settings.remote and settings.audit_log == tmp_path / "logs" / "audit.jsonl"
    assert (tmp_path / "logs" / "audit.jsonl").exists()  # checked writable before serving
    assert "http://0.0.0.0:18088/" in err
