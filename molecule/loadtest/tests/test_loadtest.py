"""The load path: 500 simulated users through the VIP with `svpn loadtest`, and nothing left behind.

The run's report is kept in .lab/reports/loadtest-molecule.json. The spread is deterministic (fixed source
addresses, the LB's jhash and bucket table), so the ±10 % bound is not luck: svpn.farm.lbhash predicts it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import testinfra
from svpn_testing.scenario import run_loadtest

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
LAB_VIEW = Path(__file__).resolve().parent.parent / "inventory"
REPORT = PROJECT / ".lab" / "reports" / "loadtest-molecule.json"
NODES = ["lt-conc1", "lt-conc2", "lt-conc3"]
LBS = ["lt-lb1", "lt-lb2"]
USERS = 500

testinfra_hosts = ["ansible://lt-conc1"]


def _host(name: str):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


@pytest.fixture(scope="module")
def report() -> dict:
    return run_loadtest(PROJECT, LAB_VIEW, REPORT, "--users", str(USERS), "--duration", "240")


def test_every_user_is_up_with_a_child_sa_and_a_virtual_ip(report):
    assert report["ramp"]["up"] == USERS
    assert report["ramp"]["failed"] == 0, report["ramp"]["failures"]
    assert sum(report["spread"]["counts"].values()) == USERS  # counted on the nodes themselves
    assert report["exit_code"] == 0


def test_users_spread_evenly_over_the_nodes(report):
    spread = report["spread"]
    assert set(spread["counts"]) == set(NODES)
    assert spread["max_deviation_pct"] <= 10.0, spread
    assert spread["counts"] == report["spread_predicted"]


def test_figures_for_the_planner_are_there(report):
    for node in NODES:
        assert report["concentrators"][node]["cpu_ms_per_setup"] > 0
    assert report["calibration"]["setup_rate_per_core"] > 0


def test_nothing_of_the_load_test_remains_on_any_node(report):
    assert report["cleanup"]["clean"], report["cleanup"]
    for name in NODES:
        node = _host(name)
        for listing in ("--list-conns", "--list-authorities", "--list-pools", "--list-certs", "--list-sas"):
            out = node.check_output(f"swanctl {listing}")
            assert "svpn-loadtest" not in out, f"{name} swanctl {listing}:\n{out}"
            assert "load-test CA" not in out, f"{name} swanctl {listing}:\n{out}"
        assert "svpn-loadtest" not in node.check_output("ls /etc/swanctl/conf.d /etc/swanctl/x509ca")


def test_no_generator_or_route_remains(report):
    for lb in LBS:
        routes = _host(lb).check_output("ip -4 route show")
        assert "198.18.64." not in routes and "198.18.96." not in routes, routes
    names = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True)
    assert not [n for n in names.stdout.split() if n.startswith("svpn-lt-")]
