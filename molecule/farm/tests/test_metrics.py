"""Prometheus on the lab-built farm (farm-app1, group monitoring) scrapes every exporter, and what it answers
is the farm's own truth: the farm's total users equal the sum of what each node's charon reports (`swanctl
--stats`), each node's figure its own, and the LBs' VIP holder metric what `ip addr` shows on each LB.

Runs after test_farm.py and test_helpdesk.py (name order) on the same farm; queries Prometheus' HTTP API from
inside farm-app1 (it listens on 127.0.0.1:9090). The lab's scrape interval is 5 s (group_vars/monitoring.yml),
so every wait is bounded by a few scrapes.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from svpn_testing.scenario import ScenarioHosts

from svpn.farm.sas import ike_sa_count
from svpn.metrics.catalog import METRICS

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
INVENTORY_FILE = os.environ["MOLECULE_INVENTORY_FILE"]
REPORT = ROOT / ".lab" / "reports" / "farm.json"
APP, MONITOR = "198.18.22.20", "farm-app1"
NODES = ["farm-conc1", "farm-conc2", "farm-conc3"]
LBS = ["farm-lb1", "farm-lb2"]
VIPS = ["198.18.21.10", "198.18.23.10"]
TARGETS_TIMEOUT = 40.0
AGREE_TIMEOUT = 30.0

testinfra_hosts = [f"ansible://{MONITOR}"]
LAB = ScenarioHosts(INVENTORY_FILE, REPORT, APP)


def query(promql: str) -> list[dict[str, Any]]:
    """An instant query through Prometheus' HTTP API: the result vector."""
    out = LAB.host(MONITOR).check_output(
        "curl --silent --max-time 5 http://127.0.0.1:9090/api/v1/query --data-urlencode %s",
        f"query={promql}",
    )
    answer = json.loads(out)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def targets() -> list[dict[str, Any]]:
    out = LAB.host(MONITOR).check_output("curl --silent --max-time 5 http://127.0.0.1:9090/api/v1/targets")
    return json.loads(out)["data"]["activeTargets"]


def test_prometheus_scrapes_every_exporter():
    started = time.monotonic()
    while True:
        health = {t["labels"]["host"]: (t["health"], t["lastError"]) for t in targets()}
        if set(health) == set(NODES + LBS) and all(h == "up" for h, _ in health.values()):
            break
        assert time.monotonic() - started < TARGETS_TIMEOUT, f"targets not all up: {health}"
        time.sleep(2)
    LAB.record("metrics_targets_up_seconds", round(time.monotonic() - started, 1))
    # every metric the catalog defines for a host kind is served by every host of that kind
    for metric in METRICS:
        hosts = {r["metric"]["host"] for r in query(metric.name)}
        wanted = {"concentrator": set(NODES), "loadbalancer": set(LBS), "both": set(NODES + LBS)}[
            metric.exporter
        ]
        if metric.name in ("svpn_concentrator_setups_total", "svpn_concentrator_setup_failures_total"):
            wanted = set(NODES)  # the farm keeps the attempt log on every node
        assert hosts == wanted, f"{metric.name}: served by {sorted(hosts)}"


def _charon_counts() -> dict[str, int]:
    counts = {}
    for node in NODES:
        count = ike_sa_count(LAB.host(node).check_output("swanctl --stats"))
        assert count is not None
        counts[node] = count
    return counts


def test_farm_users_in_prometheus_are_what_charon_reports():
    """sum(svpn_concentrator_ike_sas) against swanctl --stats on each node; clients may still be
    reconnecting after the helpdesk tests, so both sides are read until they agree (bounded)."""
    started = time.monotonic()
    while True:
        before = _charon_counts()
        per_node = {
            r["metric"]["host"]: int(float(r["value"][1])) for r in query("svpn_concentrator_ike_sas")
        }
        total = query("sum(svpn_concentrator_ike_sas)")
        after = _charon_counts()
        if before == after == per_node and total and int(float(total[0]["value"][1])) == sum(after.values()):
            break
        assert time.monotonic() - started < AGREE_TIMEOUT, (
            f"charon {before}/{after}, Prometheus {per_node} {total}"
        )
        time.sleep(2)
    assert sum(after.values()) > 0, "no user connected: the comparison would prove nothing"
    LAB.record("metrics_farm_users", sum(after.values()))


def _holds(lb: str, vip: str) -> bool:
    return f" {vip}/" in LAB.host(lb).check_output("ip -4 -o addr show")


def test_vip_holder_metric_matches_ip_addr():
    started = time.monotonic()
    while True:
        truth = {(lb, vip): _holds(lb, vip) for lb in LBS for vip in VIPS}
        seen = {
            (r["metric"]["host"], r["metric"]["vip"]): r["value"][1] == "1" for r in query("svpn_lb_vip_held")
        }
        if seen == truth:
            break
        assert time.monotonic() - started < AGREE_TIMEOUT, f"ip addr {truth}, Prometheus {seen}"
        time.sleep(2)
    for vip in VIPS:
        assert sum(truth[(lb, vip)] for lb in LBS) == 1, f"{vip}: not exactly one holder"


ALERTS = {
    "SvpnExporterDown",
    "SvpnCharonDown",
    "SvpnNodeDownOnLb",
    "SvpnPoolNearlyFull",
    "SvpnCertificateExpiring",
}
ALERTS |= {"SvpnCrlExpiring", "SvpnHalfOpenStorm", "SvpnLbSplitBrain", "SvpnLbNoVipHolder"}


def test_alert_rules_are_loaded():
    """The rules file promtool checked is the one Prometheus evaluates (the earlier tests stop nodes and LBs,
    so which alerts fire now is not asserted)."""
    out = LAB.host(MONITOR).check_output("curl --silent --max-time 5 http://127.0.0.1:9090/api/v1/rules")
    rules = {r["name"]: r for g in json.loads(out)["data"]["groups"] for r in g["rules"]}
    assert set(rules) == ALERTS
    assert all(r["health"] == "ok" for r in rules.values()), rules
