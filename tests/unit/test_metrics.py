"""The exporters' pure parts on what the lab's hosts answered (tests/unit/data/metrics/README.md), the attempt
tally against the helpdesk's own reading of a captured attempt log, and the consistency of the catalog with
docs/monitoring.md, the alert rules and the Grafana dashboard."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections import Counter
from pathlib import Path

import pytest
from cryptography import x509

from svpn.farm.host_code import distribution_files
from svpn.farm.scrape import host_addresses
from svpn.helpdesk.attempts import attempts_of
from svpn.helpdesk.causes import FAILURES, cause_of
from svpn.metrics import parse
from svpn.metrics.attempt_tally import AttemptTally, LogFollower, established
from svpn.metrics.catalog import BY_NAME, METRICS
from svpn.metrics.exporter import check_catalog

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "metrics"
ATTEMPT_LOG = Path(__file__).parent / "data" / "helpdesk" / "charon-6.0.log"
LB_PROBES = frozenset({"198.18.23.2", "198.18.23.3"})  # the molecule farm's LBs, whose probes are in the log


def vici_answers() -> dict:
    return json.loads((DATA / "vici-conc1.json").read_text())


def encoded(value):
    """The answer as the vici package gives it: byte strings."""
    if isinstance(value, dict):
        return {k: encoded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [encoded(v) for v in value]
    return value.encode()


def values(samples, name):
    return {tuple(sorted(s.labels.items())): s.value for s in samples if s.name == name}


@pytest.mark.parametrize("form", [lambda x: x, encoded], ids=["text", "bytes"])
def test_vici_answers_become_samples(form) -> None:
    answers = vici_answers()
    stats = form(answers["stats"])
    samples = parse.stats_samples(stats) + parse.counters_samples(form(answers["get-counters"]))
    samples += parse.pools_samples(form(answers["get-pools"]))
    assert values(samples, "svpn_concentrator_ike_sas") == {(): float(answers["stats"]["ikesas"]["total"])}
    assert values(samples, "svpn_concentrator_ike_sas_half_open") == {
        (): float(answers["stats"]["ikesas"]["half-open"])
    }
    counters = answers["get-counters"]["counters"][""]
    assert values(samples, "svpn_concentrator_ike_messages_total") == {
        (("counter", k),): float(v) for k, v in counters.items()
    }
    for pool, figures in answers["get-pools"].items():
        for key in ("size", "online", "offline"):
            got = values(samples, f"svpn_concentrator_pool_{key}")[(("pool", pool),)]
            assert got == float(figures[key])
    assert parse.has_counters_plugin(stats)
    assert check_catalog(samples) == []


def test_nft_counters_and_drain_table() -> None:
    ruleset = json.loads((DATA / "nft-conc1.json").read_text())
    samples = parse.nft_samples(json.dumps(ruleset))
    counters = {
        c["counter"]["name"]: c["counter"]
        for c in ruleset["nftables"]
        if "counter" in c and "name" in c["counter"]
    }
    assert values(samples, "svpn_concentrator_esp_bytes_total") == {
        (("direction", "in"),): float(counters["esp_in"]["bytes"]),
        (("direction", "out"),): float(counters["esp_out"]["bytes"]),
    }
    assert values(samples, "svpn_concentrator_draining") == {(): 0.0}
    drained = {"table": {"family": "inet", "name": "svpn_drain", "handle": 99}}
    ruleset["nftables"].append(drained)
    assert values(parse.nft_samples(json.dumps(ruleset)), "svpn_concentrator_draining") == {(): 1.0}
    assert check_catalog(samples) == []


def test_certificate_and_crl_dates_match_cryptography() -> None:
    cert_pem, crl_pem = (DATA / "conc1.crt").read_bytes(), (DATA / "svpn.crl").read_bytes()
    (cert_der,) = parse.der_blocks(cert_pem)
    (crl_der,) = parse.der_blocks(crl_pem)
    assert (
        parse.certificate_not_after(cert_der) == x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc
    )
    assert parse.crl_next_update(crl_der) == x509.load_pem_x509_crl(crl_pem).next_update_utc
    assert parse.der_blocks(cert_der) == [cert_der]  # a DER file is read as it is
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert parse.days_left(now + dt.timedelta(hours=36), now) == 1.5
    with pytest.raises(ValueError):
        parse.crl_next_update(cert_der)


def test_lb_state_health_and_buckets() -> None:
    state = json.loads((DATA / "lb1-state.json").read_text())
    samples = parse.lb_state_samples(state, now=state["time"] + 2.5)
    buckets = values(samples, "svpn_lb_buckets")
    assert sum(buckets.values()) == len(state["table"]) == 256
    assert buckets == {
        (("node", n),): float(state["table"].count(n)) for n in {x["name"] for x in state["nodes"]}
    }
    assert values(samples, "svpn_lb_node_up") == {
        (("node", n["name"]),): float(n["up"]) for n in state["nodes"]
    }
    assert values(samples, "svpn_lb_state_age_seconds") == {(): 2.5}
    state["nodes"][0]["admin"], state["nodes"][0]["up"] = "drain", False
    changed = parse.lb_state_samples(state, now=state["time"])
    assert values(changed, "svpn_lb_node_draining")[(("node", state["nodes"][0]["name"]),)] == 1.0
    assert check_catalog(samples) == []


def test_vip_holder() -> None:
    vips = ["198.18.1.10", "198.18.3.10"]
    lb1 = parse.vip_samples((DATA / "lb1-ip-addr.json").read_text(), vips)
    lb2 = parse.vip_samples((DATA / "lb2-ip-addr.json").read_text(), vips)
    assert [s.value for s in lb1] == [1.0, 1.0]
    assert [s.value for s in lb2] == [0.0, 0.0]


def helpdesk_reading(lines: list[str]) -> tuple[int, Counter[str]]:
    """Setups and failures as the helpdesk reads the same lines (attempts_of + cause_of), probes left out."""
    setups, failures = 0, Counter()
    for attempt in attempts_of("n", lines):
        if attempt.address in LB_PROBES or not attempt.address:
            continue
        if any(established(line.text) for line in attempt.lines):
            setups += 1
        elif (cause := cause_of(attempt)) in FAILURES:
            failures[cause] += 1
    return setups, failures


def test_attempt_tally_counts_as_the_helpdesk_reads_the_log() -> None:
    lines = ATTEMPT_LOG.read_text().splitlines()
    tally = AttemptTally(ignored=LB_PROBES)
    third = len(lines) // 3
    for chunk in (lines[:third], lines[third : 2 * third], lines[2 * third :]):  # fed as scrapes would
        tally.feed(chunk)
    tally.settle(now=dt.datetime(2100, 1, 1).timestamp())
    setups, failures = helpdesk_reading(lines)
    assert setups > 0 and sum(failures.values()) > 0
    assert tally.setups == setups
    assert +tally.failures == failures
    assert set(tally.failures) == set(FAILURES)  # every cause exported from the start, at 0
    assert not tally.open


def test_attempt_tally_waits_for_a_refusal_to_settle() -> None:
    lines = [line for line in ATTEMPT_LOG.read_text().splitlines() if "198.18.23.2 " not in line][:4]
    tally = AttemptTally()
    tally.feed(lines)
    last = dt.datetime.strptime(lines[-1][:24], "%Y-%m-%dT%H:%M:%S%z").timestamp()
    tally.settle(now=last + 1)
    assert sum(tally.failures.values()) == 0 and tally.open
    tally.settle(now=last + 11)
    assert tally.failures["proposal_mismatch"] == 1 and not tally.open


def test_log_follower_survives_copytruncate_and_rotation(tmp_path: Path) -> None:
    log = tmp_path / "charon.log"
    log.write_text("old line\n")
    follower = LogFollower(log)
    assert follower.read() == []  # starts at the end
    with log.open("a") as out:
        out.write("one\ntw")
    assert follower.read() == ["one"]
    with log.open("a") as out:
        out.write("o\n")
    assert follower.read() == ["two"]
    log.write_text("")  # copytruncate
    assert follower.read() == []
    with log.open("a") as out:
        out.write("after truncate\n")
    assert follower.read() == ["after truncate"]
    os.rename(log, tmp_path / "charon.log.1")
    log.write_text("new file\n")
    assert follower.read() == ["new file"]


def documented_metrics() -> set[str]:
    doc = (ROOT / "docs" / "monitoring.md").read_text()
    return set(re.findall(r"^\| `(svpn_\w+)`", doc, flags=re.MULTILINE))


def test_doc_lists_exactly_the_exporters_metrics() -> None:
    assert documented_metrics() == {m.name for m in METRICS}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression reads: identifiers that are not functions, keywords or label names."""
    expr = re.sub(r'"[^"]*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    return {n for n in names if n not in {"and", "or", "unless", "bool", "offset"} and not n[0].isdigit()}


BUILTIN = {"up"}  # Prometheus' own per-target series


def rule_expressions() -> list[str]:
    text = (ROOT / "roles" / "monitoring" / "templates" / "svpn-rules.yml.j2").read_text()
    return [
        re.sub(r"\{\{[^}]*\}\}", "1", e) for e in re.findall(r"^\s+expr: (.*)$", text, flags=re.MULTILINE)
    ]


def dashboard_expressions() -> list[str]:
    board = json.loads((ROOT / "roles" / "monitoring" / "files" / "svpn-farm-dashboard.json").read_text())
    return [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]


@pytest.mark.parametrize("where", ["rules", "dashboard"])
def test_promql_names_only_the_exporters_metrics(where: str) -> None:
    exprs = rule_expressions() if where == "rules" else dashboard_expressions()
    assert exprs
    for expr in exprs:
        names = promql_metric_names(expr)
        assert names, expr
        assert names <= set(BY_NAME) | BUILTIN, f"{expr}: {names - set(BY_NAME) - BUILTIN}"


def test_promql_reader_sees_the_names() -> None:
    got = promql_metric_names('sum by (vip) (rate(svpn_x_total{job="a"}[5m])) / on (host) svpn_y > 0.8')
    assert got == {"svpn_x_total", "svpn_y"}


def test_every_alert_of_the_issue_exists() -> None:
    text = (ROOT / "roles" / "monitoring" / "templates" / "svpn-rules.yml.j2").read_text()
    for needed in ("svpn_concentrator_charon_up", "pool_online", "certificate_days_left", "crl_days_left",
                   "ike_sas_half_open", "svpn_lb_vip_held"):  # fmt: skip
        assert needed in text


def test_vici_is_shipped_as_pure_python() -> None:
    paths = {f["path"] for f in distribution_files("vici")}
    assert {"vici/__init__.py", "vici/session.py", "vici/protocol.py"} <= paths
    assert all(p.endswith(".py") for p in paths)


def test_monitoring_sources_are_every_address_of_the_monitoring_hosts() -> None:
    hostvars = {"app1": {"svpn_addresses": {"internal": "198.18.2.20", "inside": "198.18.3.20"}}, "x": {}}
    assert host_addresses(["app1", "x"], hostvars) == ["198.18.2.20", "198.18.3.20"]


def test_the_exporter_listens_inside_or_on_a_lone_nodes_internal_network() -> None:
    from svpn.farm.scrape import exporter_address

    assert exporter_address({"public": "198.18.1.2", "inside": "198.18.3.11", "internal": "198.18.2.11"}) == (
        "198.18.3.11"
    )
    assert exporter_address({"public": "198.18.11.10", "internal": "198.18.12.10"}) == "198.18.12.10"
    assert exporter_address({"public": "198.18.11.10"}) == "" and exporter_address(None) == ""
