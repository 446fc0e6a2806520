"""Scale out and drain while users are connected, with the operator's own playbooks.

Client addresses were picked with svpn.farm.lbhash: scale-client2 (198.18.41.102) sits in a bucket that
moves from scale-conc1 to the new scale-conc3, so the scale-out must keep it where it is (sticky +
conntrack), and the two late clients hash onto scale-conc3. Last, a concentrator carrying users is
destroyed (container and disk) and rebuilt from the inventory and the controller's PKI alone
(docs/ops/rebuild-node.md). Figures go to .lab/reports/scale.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from cryptography import x509
from svpn_testing.machines import recreate_commands
from svpn_testing.scenario import ScenarioHosts

from svpn.core.ping import longest_gap
from svpn.farm.lbhash import bucket_of
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
NODES = [*OLD_NODES, NEW_NODE]
DRAIN_GOAL = 60.0
LB = "scale-lb1"

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

    # Undrain: it takes new users again; the admin state survives a redeploy in between (of the hosts that
    # hold it: the LBs and the drained node itself)
    _playbook("site.yml", "--limit", f"loadbalancers:{victim}")
    state = json.loads(_host("scale-lb1").check_output("cat /run/svpn-lb/state.json"))
    assert {n["name"]: n["admin"] for n in state["nodes"]}[victim] == "drain"
    _playbook("drain.yml", "-e", f"node={victim}", "-e", "drain_state=active")
    state = json.loads(_host("scale-lb1").check_output("cat /run/svpn-lb/state.json"))
    assert victim in state["table"]


def test_a_change_that_needs_a_restart_drains_the_node_first_and_drops_nobody():
    """site.yml with a start-time setting changed (charon's threads) on a node carrying users: the handler
    drains it (its users move), restarts charon and gives it its buckets back; the others keep their SAs."""
    nodes = [*OLD_NODES, NEW_NODE]
    placement = _wait_all_up(EARLY + LATE, nodes, timeout=60)
    victim = max(nodes, key=lambda n: list(placement.values()).count(n))
    moved = [c for c, n in placement.items() if n == victim]
    stayed = {c: _client_sa(c) for c, n in placement.items() if n != victim}
    assert moved, placement
    pid = _host(victim).check_output("systemctl show -p MainPID --value strongswan")
    pinger = _host(moved[0])
    pinger.check_output(
        f"rm -f /tmp/restart-ping.log; (ping -D -n -i 0.2 -w 300 {APP} > /tmp/restart-ping.log 2>&1 &)"
    )
    elapsed, output = _playbook("site.yml", "--limit", victim, "-e", '{"concentrator_threads": 17}')
    after = _wait_all_up(EARLY + LATE, nodes, timeout=90)
    pinger.run("pkill -x ping")
    _record("restart_handler_seconds", round(elapsed, 1))
    assert "TASK [concentrator : Drain the node first, so its users move instead of dropping]" in output
    assert "threads = 17" in _host(victim).check_output("cat /etc/strongswan.conf")
    assert _host(victim).check_output("systemctl show -p MainPID --value strongswan") != pid
    # the users of the other nodes were not touched; the moved ones are up again, reaching the app
    assert {c: _client_sa(c) for c in stayed} == stayed
    assert set(after) == set(placement)
    # and the node took new users again: it is back in the LB's table
    state = json.loads(_host("scale-lb1").check_output("cat /run/svpn-lb/state.json"))
    assert {n["name"]: n["admin"] for n in state["nodes"]}[victim] == "active"
    assert victim in state["table"]
    gap, replies, _ = longest_gap(pinger.check_output("cat /tmp/restart-ping.log"))
    _record("restart_handler_max_data_gap_seconds", round(gap, 2))
    assert replies > 10 and gap < 60.0


def _docker(*argv: str) -> str:
    done = subprocess.run(["docker", *argv], capture_output=True, text=True)
    assert done.returncode == 0, f"docker {' '.join(argv)}: {done.stderr}"
    return done.stdout


def _lb_state() -> dict:
    return json.loads(_host(LB).check_output("cat /run/svpn-lb/state.json"))


def _wait_lb(what: str, ready, timeout: float) -> dict:
    """The LB's state.json once *ready(state)* holds (a bounded wait)."""
    deadline = time.monotonic() + timeout
    while not ready(state := _lb_state()):
        assert time.monotonic() < deadline, f"LB: not {what} within {timeout:.0f} s: {state}"
        time.sleep(0.5)
    return state


def _up(state: dict, node: str) -> bool:
    return next(n["up"] for n in state["nodes"] if n["name"] == node)


def _serial(pem: str) -> int:
    return x509.load_pem_x509_certificate(pem.encode()).serial_number


def _node_serial(node: str) -> int:
    return _serial(_host(node).check_output(f"cat /etc/swanctl/x509/{node}.crt"))


def _pki_serial(node: str) -> int:
    return _serial((EPHEMERAL / "pki" / "servers" / f"{node}.crt").read_text())


def _victim_and_returner(placement: dict[str, str], table: list[str]) -> tuple[str, str]:
    """A node carrying at least two users, one of whom hashes to it in the LB's table: that user goes
    offline before the node dies and must land on the rebuilt node when it connects again."""
    for node in sorted(set(placement.values())):
        users = sorted(c for c, n in placement.items() if n == node)
        for client in users:
            address = _host(client).ansible.get_variables()["svpn_addresses"]["public"]
            if len(users) > 1 and table[bucket_of(address, len(table))] == node:
                return node, client
    raise AssertionError(f"no node carries two users, one of them hashing to it: {placement}")


def _destroy_and_wait_for_the_survivors(victim: str, clients: list[str]) -> dict[str, str]:
    _docker("rm", "-f", victim)  # the machine is gone, disk and all
    _wait_lb(f"marking {victim} down", lambda s: not _up(s, victim) and victim not in s["table"], 30)
    return _wait_all_up(clients, [n for n in NODES if n != victim], timeout=90, avoid=victim)


def _recreate_blank(machine: dict) -> None:
    for argv in recreate_commands(machine):
        subprocess.run(argv, check=True, capture_output=True, text=True)
    node = machine["Name"].lstrip("/")
    assert json.loads(_docker("inspect", node))[0]["Id"] != machine["Id"]
    blank = _host(node)
    assert not blank.file(f"/etc/swanctl/x509/{node}.crt").exists
    assert not blank.file("/etc/nftables.conf").contains("svpn")


def test_a_destroyed_concentrator_rebuilt_from_inventory_and_pki_takes_users_again():
    clients = EARLY + LATE
    placement = _wait_all_up(clients, NODES, timeout=60)
    table = _lb_state()["table"]
    victim, returner = _victim_and_returner(placement, table)
    serial = _node_serial(victim)
    assert serial == _pki_serial(victim)
    machine = json.loads(_docker("inspect", victim))[0]
    others = [c for c in clients if c != returner]

    _host(returner).check_output("systemctl stop strongswan")  # its user goes offline (laptop closed)
    started = time.monotonic()
    survived = _destroy_and_wait_for_the_survivors(victim, others)
    moved_at = time.monotonic()
    _record("rebuild_moved_users", sum(placement[c] == victim for c in others))
    _record("rebuild_seconds_until_its_users_moved", round(moved_at - started, 1))
    sas = {c: _client_sa(c) for c in others}

    _recreate_blank(machine)
    recreated_at = time.monotonic()
    # The operator's one command (docs/ops/rebuild-node.md): the node, and the LBs that wait for its IKE.
    elapsed, output = _playbook("scale.yml", "--limit", f"{victim}:loadbalancers")
    _record("rebuild_playbook_seconds", round(elapsed, 1))
    print(f"\nREBUILD PLAYBOOK OUTPUT\n{output}")  # the excerpt docs/ops/rebuild-node.md shows
    assert changed_hosts(parse_recap(output), [LB]) == [], output[-3000:]
    address = _host(victim).ansible.get_variables()["svpn_addresses"]["inside"]
    _host(LB).check_output(f"/usr/local/sbin/svpn-lb-health probe {address} --timeout-ms 1000")
    _wait_lb(f"giving {victim} its buckets back", lambda s: _up(s, victim) and s["table"] == table, 30)
    assert _node_serial(victim) == serial == _pki_serial(victim)  # deployed from the PKI, not re-issued

    _host(returner).check_output("systemctl start strongswan")
    back = _wait_all_up([returner], NODES, timeout=60)
    took = time.monotonic()
    assert back == {returner: victim}
    _record("rebuild_seconds_destroyed_to_taking_users", round(took - started, 1))
    _record("rebuild_seconds_recreated_to_taking_users", round(took - recreated_at, 1))
    # Nobody else was moved or reconnected by the node's return.
    assert _wait_all_up(others, NODES, timeout=30) == survived
    assert {c: _client_sa(c) for c in others} == sas
    print(_host(LB).check_output(f"journalctl -u svpn-lb-health --no-pager -o cat | grep -F {victim}"))
