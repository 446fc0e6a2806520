"""`svpn report`'s HTML page in a real browser (headless Chromium through Selenium, svpn_testing.browser),
opened from the file an auditor gets: it renders, its charts are there with sizes, its tables carry the
report's rows, and it asks for nothing outside itself. Read from what the browser shows, not the source."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from report_data import report
from svpn_testing.browser import headless_chromium

from svpn.report.html import render_html

By: Any
with contextlib.suppress(ImportError):  # selenium is a dev dependency
    from selenium.webdriver.common.by import By


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html(report()), encoding="utf-8")
    with headless_chromium(allow=()) as driver:
        driver.get(path.as_uri())
        yield driver


def _rows(page: Any, table_id: str) -> list[list[str]]:
    table = page.find_element(By.ID, table_id)
    return [
        [cell.get_attribute("textContent") for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in table.find_elements(By.CSS_SELECTOR, "tbody tr")
    ]


def test_every_section_renders_with_a_heading(page: Any) -> None:
    headings = [h.text.strip() for h in page.find_elements(By.CSS_SELECTOR, "section > h2")]
    assert headings == [
        "Summary", "Topology", "Crypto policy in force", "Who holds access", "PKI audit trail",
        "Capacity against the plan", "Drift: the live farm against the inventory",
    ]  # fmt: skip
    drift = page.find_element(By.CSS_SELECTOR, "#drift > h2")
    assert "alarm" in drift.get_attribute("class")


def test_the_charts_are_drawn_with_sizes(page: Any) -> None:
    chart = page.find_element(By.ID, "chart-capacity")
    assert chart.size["width"] > 300 and chart.size["height"] > 50
    bars = chart.find_elements(By.CSS_SELECTOR, "rect.bar")
    assert [b.get_attribute("data-label") for b in bars] == ["conc1", "conc2", "conc3"]
    assert all(b.size["width"] > 0 and b.size["height"] > 0 for b in bars)
    assert len(chart.find_elements(By.CSS_SELECTOR, "rect.limit")) == 3
    departments = page.find_element(By.ID, "chart-departments")
    bars = departments.find_elements(By.CSS_SELECTOR, "rect.bar")
    assert [b.get_attribute("data-label") for b in bars] == ["Lab", "Roads"]


def test_the_tables_carry_the_reports_rows(page: Any) -> None:
    assert [r[:2] for r in _rows(page, "drift-differences")] == [
        ["conc2", "config file /etc/swanctl/conf.d/svpn.conf"]
    ]
    assert [r[0] for r in _rows(page, "access-revoked")] == ["frank"]
    connected = {(r[0], r[3]) for r in _rows(page, "access-connected")}
    assert connected >= {("frank", "conc1"), ("alice", "conc2")}
    assert [r[0] for r in _rows(page, "topology-nodes")] == ["conc1", "conc2", "conc3"]
    assert [r[3] for r in _rows(page, "audit-entries")] == ["issue", "revoke"]
    capacity = _rows(page, "capacity-table")
    assert [(r[0], r[1], r[2]) for r in capacity] == [(n, "2", "5,000") for n in ("conc1", "conc2", "conc3")]


def test_the_page_loads_nothing_from_outside(page: Any) -> None:
    loaded = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded == []
    assert page.find_elements(By.TAG_NAME, "script") == []
