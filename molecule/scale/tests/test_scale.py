"""Scale out and drain while users are connected, with the operator's own playbooks.

Client addresses were picked with svpn.farm.lbhash: scale-client2 (198.18.41.102) sits in a bucket that
moves from scale-conc1 to the new scale-conc3, so the scale-out must keep it where it is (sticky +
conntrack), and the two late clients hash onto scale-conc3. Figures go to .lab/reports/scale.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from svpn_testing.scenario import ScenarioHosts

from svpn.core.ping import longest_gap
from svpn.lab.recap import changed_hosts, parse_recap

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
GROWN = ROOT / "molecule" / "scale" / "grown.yml"
REPORT = ROOT / ".lab" / "reports" / "scale.json"
APP = "198.18.42.20"
EARLY = ["scale-client1", "scale-client2", "scale-client3", "scale-client4"]
LATE = ["scale-client5", "scale-client6"]
OLD_NODES = ["scale-conc1", "scale-conc2"]
NEW_NODE = "scale-conc3"
DRAIN_GOAL = 60.0

testinfra_hosts = ["ansible://scale-app1"]


LAB = ScenarioHosts(INVENTORY, REPORT, APP)
_host, _record, _client_sa, _wait_all_up = LAB.host, LAB.record, LAB.client_sa, LAB.wait_all_up


def _playbook(name: str, *extra: str) -> tuple[float, str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(EPHEMERAL / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    started = time.monotonic()
    done = subprocess.run(
        ["ansible-playbook", "-i", str(EPHEMERAL / "inventory"), "-i", str(GROWN),
         str(ROOT / "playbooks" / name), *extra],
        env=env, capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return elapsed, done.stdout


def test_scale_out_keeps_every_user_and_new_users_land_on_the_new_node():
    before = _wait_all_up(EARLY, OLD_NODES, timeout=90)
    assert set(before.values()) == set(OLD_NODES), before
    sas_before = {c: _client_sa(c) for c in EARLY}
    charon_pids = {
        n: _host(n).check_output("systemctl show -p MainPID --value strongswan") for n in OLD_NODES
    }
    pinger = _host("scale-client2")
    pinger.check_output(f"rm -f /tmp/ping.log; (ping -D -n -i 0.2 -w 120 {APP} > /tmp/ping.log 2>&1 &)")

    elapsed, output = _playbook("scale.yml")
    recap = parse_recap(output)
    _record("scale_out_seconds", round(elapsed, 1))
    changed_existing = changed_hosts(recap, OLD_NODES)
    _record("scale_out_existing_concentrators_changed", changed_existing)
    assert changed_existing == [], recap
    # Not restarted (same charon process) and every user kept its IKE SA and virtual IP.
    assert {
        n: _host(n).check_output("systemctl show -p MainPID --value strongswan") for n in OLD_NODES
    } == charon_pids
    assert {c: _client_sa(c) for c in EARLY} == sas_before

    # The routes to the new pool and the late users: the lab's own playbook.
    _playbook("lab.yml")
    placement = _wait_all_up(EARLY + LATE, [*OLD_NODES, NEW_NODE], timeout=90)
    assert all(placement[c] == NEW_NODE for c in LATE), placement
    assert {c: placement[c] for c in EARLY} == before
    assert {c: _client_sa(c) for c in EARLY} == sas_before

    gap, replies, _ = longest_gap(pinger.check_output("cat /tmp/ping.log"))
    _record("scale_out_max_data_gap_seconds", round(gap, 2))
    assert replies > 10 and gap < 2.0


def test_drain_moves_every_user_off_the_node_within_a_minute():
    nodes = [*OLD_NODES, NEW_NODE]
    placement = _wait_all_up(EARLY + LATE, nodes, timeout=60)
    victim = NEW_NODE
    moved = [c for c, n in placement.items() if n == victim]
    assert moved, placement
    started = time.monotonic()
    _playbook("drain.yml", "-e", f"node={victim}")
    after = _wait_all_up(EARLY + LATE, nodes, timeout=DRAIN_GOAL, avoid=victim)
    elapsed = time.monotonic() - started
    _record("drain_seconds_until_all_back", round(elapsed, 1))
    _record("drain_moved_users", len(moved))
    assert elapsed < DRAIN_GOAL
    assert all(after[c] != victim for c in moved)
    assert "IKE_SAs: 0 total" in _host(victim).check_output("swanctl --stats")
    state = json.loads(_host("scale-lb1").check_output("cat /run/svpn-lb/state.json"))
    assert {n["name"]: n["admin"] for n in state["nodes"]}[victim] == "drain"
    assert victim not in state["table"]

    # Undrain: it takes new users again; the admin state survives a redeploy in between.
    _playbook("site.yml")
    state = json.loads(_host("scale-lb1").check_output("cat /run/svpn-lb/state.json"))
    assert {n["name"]: n["admin"] for n in state["nodes"]}[victim] == "drain"
    _playbook("drain.yml", "-e", f"node={victim}", "-e", "drain_state=active")
    state = json.loads(_host("scale-lb1").check_output("cat /run/svpn-lb/state.json"))
    assert victim in state["table"]
