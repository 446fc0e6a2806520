"""`svpn report` on the lab-built farm, as an auditor runs it: it lists a connected user (erin, left connected
by test_helpdesk.py) and the revoked one (frank); a proposal edited by hand in farm-conc2's swanctl file is
drift naming that node and file; a hand edit of an old audit entry breaks the hash chain at that entry. The
page opens in headless Chromium.

Runs after test_helpdesk.py (name order) on the same farm; every hand edit is undone at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from svpn_testing.browser import headless_chromium
from svpn_testing.scenario import ScenarioHosts

from svpn.access.pki import audit

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
INVENTORY = EPHEMERAL / "inventory"
PKI = EPHEMERAL / "pki"
REPORT = ROOT / ".lab" / "reports" / "farm.json"
OUT = EPHEMERAL / "report"
SWANCTL = "/etc/swanctl/conf.d/svpn.conf"  # the role's file: it carries the proposals
EDITED_NODE = "farm-conc2"
ENV = {**os.environ, "ANSIBLE_CONFIG": str(EPHEMERAL / "ansible.cfg")}

testinfra_hosts = ["ansible://farm-app1"]
LAB = ScenarioHosts(os.environ["MOLECULE_INVENTORY_FILE"], REPORT, "198.18.22.20")


def report(*args: str) -> tuple[int, dict[str, Any], float]:
    """`svpn report --json` on the farm: its exit code, its document and its wall time."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "svpn", "report", "--inventory", str(INVENTORY), "--pki", str(PKI),
         "--out", str(OUT), "--json", *args],
        capture_output=True, text=True, env=ENV, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout[-2000:] + done.stderr[-2000:]
    return done.returncode, json.loads(done.stdout), time.monotonic() - started


def rows(document: dict[str, Any], table_id: str) -> list[list[str]]:
    for section in document["sections"]:
        for table in section["tables"]:
            if table["id"] == table_id:
                return [list(r) for r in table["rows"]]
    raise AssertionError(f"no table {table_id}")


def drift_of(document: dict[str, Any], host: str) -> list[dict[str, str]]:
    return [d for d in document["differences"] if d["host"] == host]


@pytest.fixture(scope="module")
def baseline() -> dict[str, Any]:
    _, document, seconds = report()
    LAB.record("report_seconds", round(seconds, 1))
    return document


def test_the_report_lists_the_connected_user_and_the_revoked_one(baseline: dict[str, Any]) -> None:
    connected = {(r[0], r[3]) for r in rows(baseline, "access-connected")}
    assert any(user == "erin" for user, _ in connected), connected
    assert "frank" in [r[0] for r in rows(baseline, "access-revoked")]
    assert [r[0] for r in rows(baseline, "topology-nodes")] == ["farm-conc1", "farm-conc2", "farm-conc3"]
    files = {(r[0], r[1]): r[2] for r in rows(baseline, "drift-files")}
    assert files[(EDITED_NODE, SWANCTL)] == "same"
    assert baseline["unreachable"] == []


def test_the_page_opens_in_a_browser(baseline: dict[str, Any]) -> None:
    with headless_chromium() as browser:
        browser.get((OUT / "report.html").as_uri())
        chart = browser.find_element(By.ID, "chart-capacity")
        assert chart.size["width"] > 300
        bars = chart.find_elements(By.CSS_SELECTOR, "rect.bar")
        assert len(bars) == 3 and all(b.size["height"] > 0 for b in bars)
        revoked = browser.find_element(By.ID, "access-revoked")
        assert "frank" in revoked.get_attribute("textContent")


@contextlib.contextmanager
def edited_proposal() -> Iterator[None]:
    node = LAB.host(EDITED_NODE)
    node.check_output(f"cp -p {SWANCTL} /root/svpn.conf.report-test")
    try:
        node.check_output(
            f"sed -i -E '0,/proposals = [^,]+,/s//proposals = aes128gcm16-prfsha256-ecp256,/' {SWANCTL}"
        )
        yield
    finally:
        node.check_output(f"mv /root/svpn.conf.report-test {SWANCTL}")


def test_a_proposal_edited_by_hand_is_drift_naming_the_node_and_file(baseline: dict[str, Any]) -> None:
    with edited_proposal():
        code, document, _ = report()
    assert code == 1
    found = drift_of(document, EDITED_NODE)
    whats = [d["what"] for d in found]
    assert f"config file {SWANCTL}" in whats, found
    assert f"IKE proposals in {SWANCTL}" in whats, found
    edited = next(d for d in found if d["what"] == f"config file {SWANCTL}")
    assert "aes128gcm16-prfsha256-ecp256" in edited["found"]
    assert all(d["host"] == EDITED_NODE for d in document["differences"] if SWANCTL in d["what"])


def test_a_hand_edit_of_an_old_audit_entry_breaks_the_chain_there(baseline: dict[str, Any]) -> None:
    path = audit.audit_path(PKI)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert baseline["audit"]["ok"] and baseline["audit"]["entries"] == len(lines) >= 2, baseline["audit"]
    entry = json.loads(lines[0])
    entry["reason"] = "edited afterwards by hand"
    backup = path.with_name(path.name + ".report-test")
    shutil.copy2(path, backup)
    try:
        path.write_text("\n".join([json.dumps(entry), *lines[1:]]) + "\n", encoding="utf-8")
        code, document, _ = report("--no-drift-play")
    finally:
        shutil.move(backup, path)
    assert code == 1
    assert document["audit"]["ok"] is False
    assert document["audit"]["first_bad"] == entry["seq"], document["audit"]
