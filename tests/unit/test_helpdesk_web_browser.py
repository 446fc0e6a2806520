"""The helpdesk's web page in a real browser: headless Chromium (Debian's, through Selenium) against the page
served by waitress on 127.0.0.x, over a fake Backend (svpn_testing.helpdesk_fake). The tests read what the
browser shows (elements and their text), not the HTML source.

One browser for the module; two servers: the page as `svpn helpdesk serve` runs it by default (loopback) and
as it runs bound off loopback ("remote": every page needs a login). They listen on different loopback
addresses (127.0.0.1 and 127.0.0.2) so that their session cookies stay apart.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from svpn_testing.browser import headless_chromium, served
from svpn_testing.helpdesk_fake import CHECKLIST, FINDINGS, FakeHelpdesk

from svpn.helpdesk.web import agents
from svpn.helpdesk.web.app import Settings, create_app

By: Any
WebDriverWait: Any
try:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # selenium is a dev dependency; the product does not need it
    pass

AGENT, PASSWORD = "mina", "correct horse battery staple"


@dataclass
class Site:
    url: str
    backend: FakeHelpdesk
    audit_log: Path


@pytest.fixture(scope="module")
def agents_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("helpdesk") / "agents.json"
    agents.add(path, AGENT, PASSWORD)
    return path


def _site(tmp: Path, agents_file: Path, bind: str, host: str) -> Iterator[Site]:
    backend = FakeHelpdesk()
    settings = Settings(agents_file, tmp / f"audit-{host}.jsonl", bind=bind, failed_login_delay=0)
    with served(create_app(backend, settings), host=host) as url:
        yield Site(url, backend, settings.audit_log)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, agents_file: Path) -> Iterator[Site]:
    yield from _site(tmp_path_factory.mktemp("local"), agents_file, "127.0.0.1", "127.0.0.1")


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory, agents_file: Path) -> Iterator[Site]:
    yield from _site(tmp_path_factory.mktemp("remote"), agents_file, "0.0.0.0", "127.0.0.2")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chromium() as driver:
        yield driver


@pytest.fixture
def fresh(browser: Any, local: Site, remote: Site) -> Any:
    """The browser with no cookies of either site (logged out), on the print-less screen media."""
    for site in (local, remote):
        browser.get(site.url + "/static/helpdesk.css")
        browser.delete_all_cookies()
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    local.backend.fail = ""
    return browser


def text(driver: Any, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def texts(driver: Any, css: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]


def wait_for(driver: Any, css: str) -> Any:
    return WebDriverWait(driver, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, css))


def search(driver: Any, site: Site, query: str, address: str = "") -> None:
    driver.get(site.url + "/")
    driver.find_element(By.ID, "q").send_keys(query)
    if address:
        driver.find_element(By.ID, "address").send_keys(address)
    driver.find_element(By.ID, "search-button").click()
    wait_for(driver, "main section")


def log_in(driver: Any, site: Site, password: str = PASSWORD) -> None:
    if urlsplit(driver.current_url).path != "/login":
        driver.get(site.url + "/login")
    driver.find_element(By.ID, "name").send_keys(AGENT)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-button").click()
    wait_for(driver, "#agent-name, #error")


def audit_lines(site: Site) -> list[dict[str, Any]]:
    if not site.audit_log.exists():
        return []
    return [json.loads(line) for line in site.audit_log.read_text(encoding="utf-8").splitlines()]


def test_a_korean_name_finds_the_user_where_they_are_and_why_they_failed(fresh: Any, local: Site) -> None:
    user = local.backend.users[0]
    search(fresh, local, user.name[1:])  # part of the name: "지우" for 김지우
    assert text(fresh, "#user .name") == user.name
    assert text(fresh, "#user .id") == user.id
    assert text(fresh, "#user .serial") == user.serial
    assert text(fresh, "#user .not-after") == user.not_after
    rows = fresh.find_elements(By.CSS_SELECTOR, "#sessions tr.session")
    expected = local.backend.whereis(user.id).sessions_of(user.id)
    columns = {".node": "node", ".virtual-ip": "virtual_ip", ".public-address": "public_address"}
    columns |= {".since": "connected_since", ".identity": "identity"}
    for css, attribute in columns.items():
        shown = [r.find_element(By.CSS_SELECTOR, css).text for r in rows]
        assert shown == [getattr(s, attribute) for s in expected], css
    assert [r.find_element(By.CSS_SELECTOR, ".bytes-in").get_attribute("title") for r in rows] == [
        f"{s.bytes_in} B" for s in expected
    ]
    finding = FINDINGS[user.id][0]
    answer = fresh.find_element(By.CSS_SELECTOR, "#explain .finding.answer")
    assert answer.get_attribute("data-cause") == finding.cause
    assert answer.find_element(By.CSS_SELECTOR, ".what .ko").text == finding.what.ko
    assert answer.find_element(By.CSS_SELECTOR, ".what .en").text == finding.what.en
    assert answer.find_element(By.CSS_SELECTOR, ".tell .ko").text == finding.tell.ko
    assert answer.find_element(By.CSS_SELECTOR, "pre").text.splitlines() == list(finding.evidence)
    assert texts(fresh, "#checklist li.step .ko") == [w.ko for w in CHECKLIST]
    assert texts(fresh, "#checklist li.step .en") == [w.en for w in CHECKLIST]
    assert texts(fresh, "#unreachable .host") == [u.host for u in local.backend.unreachable]
    assert fresh.find_element(By.ID, "actions-need-login").is_displayed()  # not logged in: no action forms
    assert not fresh.find_elements(By.CSS_SELECTOR, "#actions form")


def test_several_matches_are_listed_each_linking_to_its_answer(fresh: Any, local: Site) -> None:
    search(fresh, local, "김")
    expected = local.backend.matching("김")
    assert len(expected) > 1
    assert [r.get_attribute("data-user") for r in fresh.find_elements(By.CSS_SELECTOR, "tr.match")] == [
        u.id for u in expected
    ]
    assert texts(fresh, "tr.match .name") == [u.name for u in expected]
    revoked = next(u for u in expected if u.status == "revoked")
    fresh.find_element(By.CSS_SELECTOR, f'tr.match[data-user="{revoked.id}"] a.user-link').click()
    wait_for(fresh, "#user .name")
    assert text(fresh, "#user .name") == revoked.name
    assert text(fresh, "#user .status .ko") == "폐기됨"
    assert fresh.find_element(By.CSS_SELECTOR, ".finding.answer").get_attribute("data-cause") == "revoked"
    assert text(fresh, "#no-sessions")


def test_an_address_alone_gives_what_the_farm_saw_of_it(fresh: Any, local: Site) -> None:
    search(fresh, local, "", address="198.18.250.9")
    assert fresh.find_element(By.ID, "nobody").is_displayed()
    answer = fresh.find_element(By.CSS_SELECTOR, ".finding.answer")
    assert answer.get_attribute("data-cause") == "never_seen"
    assert answer.find_element(By.CSS_SELECTOR, ".address").text == "198.18.250.9"


def test_a_backend_error_is_a_message_on_the_page(fresh: Any, local: Site) -> None:
    local.backend.fail = "inventory 'inventories/prod' cannot be read: no hosts.yml"
    search(fresh, local, "김지우")
    assert text(fresh, "#error") == local.backend.fail
    assert fresh.find_element(By.ID, "q").get_attribute("value") == "김지우"  # the search box stays
    assert "Traceback" not in fresh.find_element(By.TAG_NAME, "body").text


def test_print_shows_the_answer_and_checklist_without_navigation_search_or_actions(
    fresh: Any, local: Site
) -> None:
    log_in(fresh, local)
    fresh.get(f"{local.url}/user/{local.backend.users[0].id}")
    wait_for(fresh, "#actions form")
    hidden = ("#top", "#search", "#actions", "#print", "footer")
    assert all(fresh.find_element(By.CSS_SELECTOR, css).is_displayed() for css in hidden)
    fresh.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert not any(fresh.find_element(By.CSS_SELECTOR, css).is_displayed() for css in hidden)
    for shown in ("#user", "#sessions", "#explain", "#checklist"):
        assert fresh.find_element(By.CSS_SELECTOR, shown).is_displayed(), shown
    assert all(
        e.is_displayed() for e in fresh.find_elements(By.CSS_SELECTOR, "#checklist .ko, #checklist .en")
    )


def test_off_localhost_every_page_asks_for_a_login_first(fresh: Any, remote: Site) -> None:
    query = remote.backend.users[0].email
    fresh.get(f"{remote.url}/?q={quote(query)}")
    wait_for(fresh, "#login")
    assert urlsplit(fresh.current_url).path == "/login"
    assert not fresh.find_elements(By.ID, "search")  # nothing to search with before the login
    log_in(fresh, remote, password="not the password")
    assert text(fresh, "#error")
    log_in(fresh, remote)
    assert text(fresh, "#agent-name") == AGENT
    wait_for(fresh, "#user .name")  # back where the agent wanted to go, the search done
    assert text(fresh, "#user .email") == query
    assert [(e["action"], e["agent"], e["result"]) for e in audit_lines(remote)] == [
        ("login-failed", AGENT, "failed"),
        ("login", AGENT, "ok"),
    ]


def test_rebuilding_a_bundle_shows_the_password_once_and_audits_without_it(fresh: Any, local: Site) -> None:
    user = local.backend.users[0]
    fresh.get(f"{local.url}/user/{user.id}")
    fresh.find_element(By.CSS_SELECTOR, "#actions-need-login a").click()
    wait_for(fresh, "#login")
    log_in(fresh, local)
    wait_for(fresh, "#rebuild-bundle")  # back on the user's page, now with the actions
    before = len(audit_lines(local))
    fresh.find_element(By.ID, "confirm").click()
    fresh.find_element(By.ID, "rebuild-bundle-button").click()
    wait_for(fresh, "#result")
    assert fresh.find_element(By.ID, "result").get_attribute("data-ok") == "yes"
    assert local.backend.last_secret and text(fresh, "#secret") == local.backend.last_secret
    assert local.backend.calls[-1] == ("rebuild-bundle", user.id)
    line = audit_lines(local)[before]
    assert (line["agent"], line["remote"], line["action"], line["user_id"], line["result"]) == (
        AGENT,
        "127.0.0.1",
        "rebuild-bundle",
        user.id,
        "ok",
    )
    assert local.backend.last_secret not in local.audit_log.read_text(encoding="utf-8")


def test_ending_sessions_shows_the_result_and_leaves_its_audit_line(fresh: Any, local: Site) -> None:
    user = local.backend.users[0]
    log_in(fresh, local)
    fresh.get(f"{local.url}/user/{user.id}")
    before = len(audit_lines(local))
    fresh.find_element(By.ID, "end-sessions-button").click()
    wait_for(fresh, "#result")
    result = local.backend.end_sessions(user.id)  # what the backend answers to that request
    assert text(fresh, "#result .message .en") == result.message.en
    assert text(fresh, "#result .message .ko") == result.message.ko
    assert not fresh.find_elements(By.ID, "secret")
    lines = audit_lines(local)[before:]
    assert [(e["action"], e["user_id"], e["agent"], e["result"]) for e in lines] == [
        ("end-sessions", user.id, AGENT, "ok")
    ]
    assert lines[0]["message"] == result.message.en
