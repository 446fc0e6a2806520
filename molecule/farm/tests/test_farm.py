"""The load-balanced farm, proven with real parts: spread through the VIP, node loss, LB failover.

It is a mixed farm, as during an OS upgrade: farm-conc3 and the backup LB farm-lb2 run Debian 13
(strongSwan 6), the rest Debian 12 (strongSwan 5.9) - see molecule.yml. So users land on both releases, and
the failover hands the flows from a Debian 12 LB to a Debian 13 one.

Client addresses were picked so that the LB's hash gives every concentrator two of the six clients; the
spread test checks that prediction (svpn.farm.lbhash + svpn.farm.buckets) against where each user really
landed. Measured figures are printed and written to .lab/reports/farm.json.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from ipaddress import ip_network
from pathlib import Path

from svpn_testing.scenario import ScenarioHosts, run_loadtest

from svpn.core.ping import longest_gap
from svpn.farm.buckets import bucket_owners
from svpn.farm.lbhash import bucket_of
from svpn.loadtest.names import GENERATOR_CONTAINER_PREFIX, SOURCE_RANGE

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
REPORT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / ".lab" / "reports" / "farm.json"
VIP = "198.18.21.10"
APP = "198.18.22.20"
CLIENTS = [f"farm-client{i}" for i in range(1, 7)]
NODES = ["farm-conc1", "farm-conc2", "farm-conc3"]
LBS = ["farm-lb1", "farm-lb2"]
CLIENT_ADDR = {
    "farm-client1": "198.18.21.101",
    "farm-client2": "198.18.21.102",
    "farm-client3": "198.18.21.104",
    "farm-client4": "198.18.21.105",
    "farm-client5": "198.18.21.106",
    "farm-client6": "198.18.21.109",
}
# The hosts molecule.yml runs on the Debian 13 image; every other farm host runs Debian 12.
DEBIAN_13 = {"farm-conc3", "farm-lb2"}
# The LB that holds the VIPs when the failover test stops it: a Debian 12 one, so its flows go to Debian 13.
FAILOVER_FROM = "farm-lb1"
NODE_LOSS_GOAL = 60.0
LB_GAP_GOAL = 5.0

testinfra_hosts = ["ansible://farm-app1"]


LAB = ScenarioHosts(INVENTORY, REPORT, APP)
_host, _record, _client_sa = LAB.host, LAB.record, LAB.client_sa


def _wait_all_up(clients, timeout: float, avoid: str | None = None) -> dict[str, str]:
    return LAB.wait_all_up(clients, NODES, timeout, avoid)


def test_every_client_tunnels_through_the_vip_and_reaches_the_app():
    placement = _wait_all_up(CLIENTS, timeout=90)
    for client in CLIENTS:
        out = _host(client).check_output("swanctl --list-sas --ike svpn")
        assert f"@ {VIP}[4500]" in out, out
    counts = {node: list(placement.values()).count(node) for node in NODES}
    _record("spread_6_clients", counts)
    assert all(counts[node] >= 1 for node in NODES), counts


def _debian_major(host: str) -> str:
    return _host(host).check_output("cat /etc/debian_version").split(".")[0]


def test_the_farm_mixes_debian_12_and_13_and_both_carry_users():
    releases = {host: _debian_major(host) for host in NODES + LBS}
    _record("debian_release_of", releases)
    assert releases == {host: "13" if host in DEBIAN_13 else "12" for host in NODES + LBS}
    # The charon that answers is the release's own: strongSwan 6 on Debian 13, 5.9 on Debian 12.
    for node in NODES:
        daemon = _host(node).check_output("swanctl --version --daemon")
        assert re.search(r"strongSwan 6\." if node in DEBIAN_13 else r"strongSwan 5\.9\.", daemon), daemon
    placement = _wait_all_up(CLIENTS, timeout=30)  # every client reaches the app through its node
    carried_by = {releases[node] for node in placement.values()}
    assert carried_by == {"12", "13"}, placement


def test_users_land_where_the_lb_hash_says():
    placement = _wait_all_up(CLIENTS, timeout=30)
    table = bucket_owners(NODES, 256)
    predicted = {c: table[bucket_of(CLIENT_ADDR[c], 256)] for c in CLIENTS}
    assert placement == predicted


def test_lb_health_state_and_table_are_readable():
    for lb in LBS:
        state = json.loads(_host(lb).check_output("cat /run/svpn-lb/state.json"))
        assert {n["name"]: n["up"] for n in state["nodes"]} == dict.fromkeys(NODES, True)
        assert state["table"] == bucket_owners(NODES, 256)


def test_node_loss_moves_its_users_to_the_survivors():
    placement = _wait_all_up(CLIENTS, timeout=30)
    victim = max(NODES, key=lambda n: list(placement.values()).count(n))
    moved = [c for c, n in placement.items() if n == victim]
    node = _host(victim)
    started = time.monotonic()
    node.check_output("systemctl stop strongswan")
    try:
        after = _wait_all_up(CLIENTS, timeout=NODE_LOSS_GOAL, avoid=victim)
        elapsed = time.monotonic() - started
        _record("node_loss_recovery_seconds", round(elapsed, 1))
        _record("node_loss_moved_users", len(moved))
        assert all(after[c] != victim for c in moved)
        # The LBs saw it and took its buckets away, with the reason logged.
        for lb in LBS:
            log = _host(lb).check_output("journalctl -u svpn-lb-health --no-pager")
            assert re.search(rf"node {victim}: DOWN: no IKE answer", log), log[-2000:]
            state = json.loads(_host(lb).check_output("cat /run/svpn-lb/state.json"))
            assert victim not in state["table"]
    finally:
        node.check_output("systemctl start strongswan")
    # It comes back: its buckets return once it answers IKE again.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = [json.loads(_host(lb).check_output("cat /run/svpn-lb/state.json")) for lb in LBS]
        if all(s["table"] == bucket_owners(NODES, 256) for s in states):
            break
        time.sleep(1)
    else:
        raise AssertionError(f"{victim}'s buckets did not come back within 30 s")


PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
LAB_VIEW = Path(__file__).resolve().parent.parent / "inventory"
UPGRADE_REPORT = PROJECT / ".lab" / "reports" / "upgrade-under-load.json"
CANARY = "farm-client6"
LOAD_USERS = 300
UPGRADE_GAP_GOAL = 60.0


def _charon_pids() -> dict[str, str]:
    return {n: _host(n).check_output("systemctl show -p MainPID --value strongswan") for n in NODES}


def _upgrade_under_load() -> dict:
    """upgrade.yml as the operator runs it, inside `svpn loadtest --during` (300 simulated users up)."""
    upgrade = " ".join(
        [
            f"ANSIBLE_CONFIG={EPHEMERAL / 'ansible.cfg'}", "ANSIBLE_FORCE_COLOR=0",
            "ansible-playbook", "-i", str(EPHEMERAL / "inventory"),
            str(PROJECT / "playbooks" / "upgrade.yml"),
            "-e", f"upgrade_canary={CANARY}", "-e", f"upgrade_canary_target={APP}",
        ]
    )  # fmt: skip
    return run_loadtest(
        PROJECT, LAB_VIEW, UPGRADE_REPORT,
        "--users", str(LOAD_USERS), "--duration", "1200", "--during", upgrade, timeout=1500,
    )  # fmt: skip


def test_rolling_upgrade_under_load_moves_every_user_and_loses_none():
    """upgrade.yml with the lab clients and 300 load-test users connected: each node drained, upgraded,
    restarted and proven with the canary's tunnel in turn, then the LBs, the backup first. Every user is
    connected at the end (moved, not lost); the longest silence a lab client's pings saw is reported."""
    _wait_all_up(CLIENTS, timeout=60)
    pids_before, vip_before = _charon_pids(), _vip_holder()
    since = int(time.time())
    pingers = [c for c in CLIENTS if c != CANARY]
    for client in pingers:
        _host(client).check_output(
            f"rm -f /tmp/upgrade-ping.log; (ping -D -n -i 0.2 -w 1500 {APP} > /tmp/upgrade-ping.log 2>&1 &)"
        )
    try:
        report = _upgrade_under_load()
    finally:
        logs = {}
        for client in pingers:
            _host(client).run("pkill -x ping")
            logs[client] = _host(client).check_output("cat /tmp/upgrade-ping.log")
    during = report["during"]
    output = Path(during["output"]).read_text()
    _record("upgrade_seconds", during["seconds"])
    _record("upgrade_load_users", {k: during[k] for k in ("users_before", "users_lowest", "users_after")})
    _record("upgrade_load_all_back_s", during["all_back_s"])
    assert during["exit_code"] == 0, output[-5000:]
    assert report["exit_code"] == 0, report.get("cleanup")
    # every load-test user was up before and is up after: moved, not lost
    assert during["users_before"] == LOAD_USERS and during["users_after"] == LOAD_USERS, during
    # every node was really restarted (and the run's connection reloaded into it), none skipped
    pids_after = _charon_pids()
    assert all(pids_after[n] != pids_before[n] for n in NODES), (pids_before, pids_after)
    assert sorted(during["reloaded"]) == NODES, during["reloaded"]
    canary_task = "TASK [Ping upgrade_canary_target through the tunnel from the canary]"
    assert output.count(canary_task) == len(NODES), output[-3000:]
    assert "SKIPPED tunnel check" not in output
    # the lab's clients: all connected and reaching the app at the end
    placement = _wait_all_up(CLIENTS, timeout=90)
    _record("upgrade_placement_after", placement)
    assert not report.get("lab_clients_still_down"), report.get("lab_clients_still_down")
    # the VIPs moved once: from the LB that held them to the other one (upgraded first)
    vip_after = _vip_holder()
    assert vip_after != vip_before, (vip_before, vip_after)
    _record("upgrade_vip_moved", f"{vip_before} -> {vip_after}")
    # how often each LB took the VIPs during the run (keepalived's own log): the claim is once, in all
    masters = {
        lb: _host(lb)
        .check_output(f"journalctl -u keepalived --since @{since} --no-pager")
        .count("Entering MASTER")
        for lb in LBS
    }
    _record("upgrade_vip_takeovers", masters)
    gaps = {}
    for client, log in logs.items():
        gap, replies, span = longest_gap(log)
        gaps[client] = round(gap, 1)
        assert replies > 100 and span > during["seconds"] - 30, (client, replies, span)
    _record("upgrade_longest_data_gap_seconds", max(gaps.values()))
    _record("upgrade_data_gaps_per_user_seconds", gaps)
    assert max(gaps.values()) < UPGRADE_GAP_GOAL, gaps


def test_the_load_test_spread_as_predicted_measured_and_left_nothing_behind():
    """The load path itself (once molecule/loadtest's own farm; folded here to spare CI a farm): the
    upgrade run's 300 users came up with a CHILD SA and a virtual IP, spread as svpn.farm.lbhash and the
    bucket table predict, gave the planner its figures, and nothing of the run remains on any host."""
    report = json.loads(UPGRADE_REPORT.read_text())
    assert report["ramp"]["up"] == LOAD_USERS and report["ramp"]["failed"] == 0, report["ramp"]["failures"]
    assert sum(report["spread"]["counts"].values()) == LOAD_USERS  # counted on the nodes themselves
    assert report["spread"]["counts"] == report["spread_predicted"], report["spread"]
    assert set(report["spread"]["counts"]) == set(NODES)
    assert all(report["concentrators"][node]["cpu_ms_per_setup"] > 0 for node in NODES)
    assert report["calibration"]["setup_rate_per_core"] > 0
    assert report["cleanup"]["clean"], report["cleanup"]
    for name in NODES:
        node = _host(name)
        for listing in ("--list-conns", "--list-authorities", "--list-pools", "--list-certs", "--list-sas"):
            out = node.check_output(f"swanctl {listing}")
            assert "svpn-loadtest" not in out and "load-test CA" not in out, f"{name} {listing}:\n{out}"
        assert "svpn-loadtest" not in node.check_output("ls /etc/swanctl/conf.d /etc/swanctl/x509ca")
    for lb in LBS:  # the generators' source addresses were routed through the LBs for the run only
        routes = json.loads(_host(lb).check_output("ip -4 -j route show"))
        dests = [r["dst"] for r in routes if r["dst"] != "default"]
        left = [dst for dst in dests if ip_network(dst).overlaps(SOURCE_RANGE)]
        assert not left, (lb, left)
    names = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True)
    assert not [n for n in names.stdout.split() if n.startswith(GENERATOR_CONTAINER_PREFIX)]


def _vip_holders() -> list[str]:
    return [lb for lb in LBS if VIP in _host(lb).check_output("ip -4 -o addr show")]


def _vip_holder() -> str:
    holders = _vip_holders()
    assert len(holders) == 1, f"VIP {VIP} held by {holders} (split brain or none)"
    return holders[0]


# A VRRP advertisement (version 2, priority 255) for the pair's router id, forged by a host on the public
# network with the other LB's address as its source: before the control plane moved inside, the master
# accepted it and gave up the VIPs. Sent with IP_HDRINCL (TTL 255, as VRRP wants) from a lab client.
_FORGE = r"""
import socket, struct, sys
src, dst, vrid, port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def csum(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF
def ip(proto, payload):
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, 255, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst))
    return head[:10] + struct.pack("!H", csum(head)) + head[12:] + payload
vrrp = struct.pack("!BBBBBBH4s", 0x21, vrid, 255, 1, 0, 1, 0, socket.inet_aton(dst))
vrrp = vrrp[:6] + struct.pack("!H", csum(vrrp)) + vrrp[8:]
sync = struct.pack("!HHHH", port, port, 8 + 16, 0) + b"\0" * 16
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for _ in range(5):
    s.sendto(ip(112, vrrp), (dst, 0))
    s.sendto(ip(17, sync), (dst, 0))
"""


def _forged_count(lb: str) -> int:
    out = _host(lb).check_output("nft list counter inet svpn_lb forged_control")
    return int(re.search(r"packets (\d+)", out).group(1))


def test_the_lb_control_plane_cannot_be_reached_from_the_public_side():
    master = _vip_holder()
    (peer,) = [lb for lb in LBS if lb != master]
    peer_public = _host(peer).check_output("cat /etc/keepalived/keepalived.conf")
    assert "unicast_src_ip 198.18.23." in peer_public, "VRRP is not on the inside network"
    before = _forged_count(master)
    log_mark = _host(master).check_output("date +%s").strip()
    attacker = _host("farm-client6")
    addr = {"farm-lb1": "198.18.21.2", "farm-lb2": "198.18.21.3"}
    attacker.check_output(f"python3 -c '{_FORGE}' {addr[peer]} {addr[master]} 51 3780")
    time.sleep(4)  # more than 3 adverts: time enough for a master that believed it to step down
    assert _forged_count(master) - before == 10, "the forged packets did not reach the firewall's drop rule"
    assert _vip_holder() == master, "a forged VRRP advert from the public side moved the VIPs"
    log = _host(master).check_output(f"journalctl -u keepalived --since @{log_mark} --no-pager")
    assert "higher priority" not in log.lower() and "BACKUP" not in log, log[-2000:]
    # IPv6 reaches no LB: the inet table drops it (tried on the public link-local address, if any).
    lb = _host(master)
    public_if = lb.check_output(f"ip -4 -o addr show to {addr[master]}").split()[1]
    link_local = lb.run(f"ip -6 -o addr show dev {public_if} scope link").stdout.split()
    if link_local:
        target = link_local[3].split("/")[0]
        assert attacker.run(f"ping -6 -c 2 -W 1 {target}%eth0").rc != 0, "IPv6 reached the LB"
    else:
        print("\nSKIPPED: the IPv6 probe (the LB's public interface has no IPv6 address in this lab)")


def _vips_onto(wanted: str) -> None:
    """Put the VIPs on *wanted*: restarting keepalived on the other LB hands them over (it leaves with a
    priority-0 advert; nopreempt keeps them where they went when it comes back)."""
    holder = _vip_holder()
    _record("lb_vip_holder_before_failover_test", holder)
    if holder == wanted:
        return
    _host(holder).check_output("systemctl restart keepalived")
    deadline = time.monotonic() + 20
    while _vip_holders() != [wanted]:
        assert time.monotonic() < deadline, f"the VIPs did not move from {holder} to {wanted}"
        time.sleep(1)


def test_lb_failover_keeps_established_tunnels_flowing():
    # Which LB won the first election depends on start order; the failover must land on Debian 13.
    _vips_onto(FAILOVER_FROM)
    _wait_all_up(CLIENTS, timeout=60)
    master = _vip_holder()
    client = CLIENTS[0]
    vip_before, sa_before = _client_sa(client)
    probe = _host(client)
    # 0.1 s pings through the tunnel for 20 s; the longest silence is the data gap.
    probe.check_output(f"rm -f /tmp/ping.log; (ping -D -n -i 0.1 -w 20 {APP} > /tmp/ping.log 2>&1 &)")
    time.sleep(4)
    subprocess.run(["docker", "stop", "--time", "10", master], check=True, capture_output=True)
    time.sleep(18)
    gap, replies, span = longest_gap(probe.check_output("cat /tmp/ping.log"))
    _record("lb_failover_data_gap_seconds", round(gap, 2))
    assert replies > 20, "the ping through the tunnel never ran"
    assert span > 14, "traffic did not continue after the failover"
    assert gap < LB_GAP_GOAL
    (survivor,) = [lb for lb in LBS if lb != master]
    assert VIP in _host(survivor).check_output("ip -4 -o addr show")
    assert survivor in DEBIAN_13 and master not in DEBIAN_13, (master, survivor)
    # The same IKE SA and virtual IP carried on: the tunnel was never re-established.
    assert _client_sa(client) == (vip_before, sa_before)
