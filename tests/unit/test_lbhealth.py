"""The LB health checker (svpn.farm.lbhealth) driven through a fake LB host: canned ike-scan, nft and
conntrack outputs, files in a temporary directory, a clock the test moves."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from svpn.farm import lbhealth
from svpn.farm.buckets import bucket_owners
from svpn.farm.lbhealth import (
    Checker,
    Done,
    Host,
    Node,
    StrayFlow,
    ike_answered,
    probe,
    probe_command,
    read_sticky,
    split_flows,
    stray_flows,
    table_change,
    table_owners,
    table_script,
)

ADDRESS = {"conc1": "198.18.3.11", "conc2": "198.18.3.12", "conc3": "198.18.3.13", "conc4": "198.18.3.14"}
VIP = "198.18.1.100"
ANSWER = (
    "Starting ike-scan 1.9.5 with 1 hosts (http://www.nta-monitor.com/tools/ike-scan/)\n"
    "{address}\tNotify message 14 (NO_PROPOSAL_CHOSEN)\n\n"
    "Ending ike-scan 1.9.5: 1 hosts scanned in 0.012 seconds (83.33 hosts/sec).  "
    "0 returned handshake; 1 returned notify\n"
)
SILENCE = (
    "Starting ike-scan 1.9.5 with 1 hosts (http://www.nta-monitor.com/tools/ike-scan/)\n\n"
    "Ending ike-scan 1.9.5: 1 hosts scanned in 1.512 seconds (0.66 hosts/sec).  "
    "0 returned handshake; 0 returned notify\n"
)
# `nft -j list map inet svpn_lb sticky`: an element with a timeout is an object, one without a plain string.
STICKY = {
    "nftables": [
        {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
        {
            "map": {
                "family": "inet",
                "name": "sticky",
                "table": "svpn_lb",
                "type": "ipv4_addr",
                "handle": 3,
                "map": "ipv4_addr",
                "flags": ["timeout", "dynamic"],
                "timeout": 180,
                "elem": [
                    [{"elem": {"val": "198.18.1.101", "timeout": 180, "expires": 171}}, "198.18.3.11"],
                    [{"elem": {"val": "198.18.1.102", "timeout": 180, "expires": 12}}, "198.18.3.12"],
                    ["198.18.1.103", "198.18.3.12"],
                ],
            }
        },
    ]
}
# `conntrack -L -p udp --orig-dst VIP`: 198.18.1.102's IKE flow went to conc1, its NAT-T flow to conc2.
FLOWS = """\
udp      17 27 src=198.18.1.101 dst=198.18.1.100 sport=4500 dport=4500 src=198.18.3.11 dst=198.18.1.101 \
sport=4500 dport=4500 [ASSURED] mark=0 use=1
udp      17 29 src=198.18.1.102 dst=198.18.1.100 sport=500 dport=500 src=198.18.3.11 dst=198.18.1.102 \
sport=500 dport=500 mark=0 use=1
udp      17 117 src=198.18.1.102 dst=198.18.1.100 sport=4500 dport=4500 src=198.18.3.12 dst=198.18.1.102 \
sport=4500 dport=4500 [ASSURED] mark=0 use=1
udp      17 25 src=198.18.1.101 dst=198.18.1.100 sport=500 dport=500 src=198.18.3.11 dst=198.18.1.101 \
sport=500 dport=500 [ASSURED] mark=0 use=1
"""


class FakeLB:
    """The commands the checker runs on the LB: canned answers, and a record of what it ran."""

    def __init__(self) -> None:
        self.answering = set(ADDRESS.values())
        self.sticky = json.dumps(STICKY)
        self.flows = ""
        self.nft_error = ""
        self.commands: list[list[str]] = []
        self.scripts: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, argv: Sequence[str], stdin: str | None = None, timeout: float | None = None) -> Done:
        argv = list(argv)
        if argv[0] == "ike-scan":
            address = argv[-1]
            return Done(0, ANSWER.format(address=address) if address in self.answering else SILENCE, "")
        with self.lock:
            self.commands.append(argv)
        if argv[:3] == ["nft", "-f", "-"]:
            assert stdin is not None
            self.scripts.append(stdin)
            return Done(1, "", self.nft_error) if self.nft_error else Done(0, "", "")
        if argv[:2] == ["nft", "-j"]:
            return Done(0, self.sticky, "")
        if argv[:2] == ["conntrack", "-L"]:
            return Done(
                0, self.flows, "conntrack v1.4.7 (conntrack-tools): 4 flow entries have been shown.\n"
            )
        if argv[:2] == ["conntrack", "-D"]:
            return Done(0, "", "conntrack v1.4.7 (conntrack-tools): 2 flow entries have been deleted.\n")
        raise AssertionError(f"unexpected command {argv}")

    def deletions(self) -> list[list[str]]:
        return [c for c in self.commands if c[:2] == ["conntrack", "-D"]]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def write_backends(path: Path, nodes: Sequence[str], drain: Sequence[str] = ()) -> None:
    specs = [{"name": n, "address": ADDRESS[n], "state": "drain" if n in drain else "active"} for n in nodes]
    config = {"buckets": 256, "vip": VIP, "interval": 1, "timeout_ms": 1500, "fall": 3, "rise": 2}
    path.write_text(json.dumps({**config, "nodes": specs}))


@pytest.fixture
def lb(tmp_path: Path) -> tuple[Checker, FakeLB, list[str]]:
    fake, lines, clock = FakeLB(), [], Clock()
    host = Host(
        run=fake,
        log=lines.append,
        wall=lambda: 1700000000.0,
        monotonic=clock,
        sleep=lambda _s: None,
        config=tmp_path / "backends.json",
        admin=tmp_path / "admin-state.json",
        state_dir=tmp_path / "run",
    )
    write_backends(host.config, ["conc1", "conc2", "conc3"])
    return Checker(host), fake, lines


def state(checker: Checker) -> dict:
    return json.loads((checker.host.state_dir / "state.json").read_text())


# --------------------------------------------------------------------------- the probe


def test_any_ike_answer_counts_and_silence_does_not() -> None:
    assert ike_answered(ANSWER.format(address="198.18.3.11"))
    assert ike_answered("... 1 returned handshake; 0 returned notify")
    assert not ike_answered(SILENCE)
    assert not ike_answered("ike-scan: unknown option")


def test_probe_runs_ike_scan_with_the_timeout_and_says_why() -> None:
    seen: list[tuple[list[str], float | None]] = []

    def run(argv: Sequence[str], stdin: str | None = None, timeout: float | None = None) -> Done:
        seen.append((list(argv), timeout))
        return Done(0, SILENCE, "")

    assert probe("198.18.3.12", 500, run) == (False, "no IKE answer from 198.18.3.12 within 500 ms")
    assert seen == [(["ike-scan", "--ikev2", "--sport=0", "--retry=1", "--timeout=500", "198.18.3.12"], 5.5)]
    assert probe("198.18.3.11", 500, FakeLB()) == (True, "IKE answered")

    def hung(argv: Sequence[str], stdin: str | None = None, timeout: float | None = None) -> Done:
        raise subprocess.TimeoutExpired(list(argv), timeout or 0)

    assert probe("198.18.3.11", 500, hung) == (False, "ike-scan hung")


def test_probe_command_exits_0_only_when_ike_answered(tmp_path: Path) -> None:
    lines: list[str] = []
    host = Host(run=FakeLB(), log=lines.append, config=tmp_path / "backends.json")
    assert probe_command("198.18.3.11", 500, host) == 0
    assert probe_command("198.18.3.99", 500, host) == 1
    assert lines == ["IKE answer from 198.18.3.11", "no IKE answer from 198.18.3.99 within 500 ms"]
    # Without --timeout-ms: the checker's own timeout, from backends.json; none there: exit 2.
    assert probe_command("198.18.3.11", None, host) == 2
    write_backends(host.config, ["conc1"])
    assert probe_command("198.18.3.99", None, host) == 1
    assert lines[-1] == "no IKE answer from 198.18.3.99 within 1500 ms"


def test_command_line_has_a_probe_mode_and_runs_the_daemon_without_one() -> None:
    args = lbhealth.parse_args(["probe", "198.18.3.11", "--timeout-ms", "500"])
    assert (args.command, args.address, args.timeout_ms) == ("probe", "198.18.3.11", 500)
    assert lbhealth.parse_args([]).command is None


# --------------------------------------------------------------------------- fall and rise


def test_a_node_goes_down_after_fall_misses_and_up_after_rise_answers() -> None:
    node = Node("conc1", "198.18.3.11", "active", since=0.0)
    miss, hit = (False, "no IKE answer"), (True, "IKE answered")
    flips = [node.count(*result, fall=3, rise=2, now=float(i)) for i, result in enumerate([miss, miss, hit])]
    assert flips == [False, False, False] and node.up  # an answer in between starts the count again
    flips = [node.count(*miss, fall=3, rise=2, now=10.0 + i) for i in range(3)]
    assert flips == [False, False, True]
    assert (node.up, node.reason, node.since) == (False, "no IKE answer (3 probes in a row)", 12.0)
    assert [node.count(*hit, fall=3, rise=2, now=20.0 + i) for i in range(2)] == [False, True]
    assert (node.up, node.reason) == (True, "IKE answered (2 probes in a row)")


def test_a_silent_node_loses_its_buckets_and_flows_on_the_third_round(lb) -> None:
    checker, fake, lines = lb
    checker.round()
    assert state(checker)["table"] == bucket_owners(["conc1", "conc2", "conc3"], 256)
    fake.answering.discard(ADDRESS["conc2"])
    checker.round()
    checker.round()
    assert all(n["up"] for n in state(checker)["nodes"])
    assert not fake.deletions()
    checker.round()
    assert "node conc2: DOWN: no IKE answer from 198.18.3.12 within 1500 ms (3 probes in a row)" in lines
    assert state(checker)["table"] == bucket_owners(["conc1", "conc3"], 256)
    assert "add element inet svpn_lb down { 198.18.3.12 }\n" in fake.scripts[-2]
    # Unpinned after the new table is live: its sticky sources, then its conntrack flows.
    assert fake.scripts[-1] == "delete element inet svpn_lb sticky { 198.18.1.102, 198.18.1.103 }\n"
    assert fake.deletions() == [["conntrack", "-D", "-p", "udp", "--reply-src", "198.18.3.12"]]
    assert lines[-2:] == [
        "node conc2: forgot 2 sticky source addresses",
        "node conc2: deleted 2 flows pinned to 198.18.3.12",
    ]
    before, after = bucket_owners(["conc1", "conc2", "conc3"], 256), bucket_owners(["conc1", "conc3"], 256)
    moved = sum(a != b for a, b in zip(before, after, strict=True))
    assert f"; {moved} of 256 buckets changed owner" in lines[-3]


def test_a_node_that_answers_again_gets_its_buckets_back_after_rise(lb) -> None:
    checker, fake, lines = lb
    fake.answering.discard(ADDRESS["conc2"])
    for _ in range(3):
        checker.round()
    fake.answering.add(ADDRESS["conc2"])
    checker.round()
    assert state(checker)["table"] == bucket_owners(["conc1", "conc3"], 256)
    checker.round()
    assert "node conc2: UP: IKE answered (2 probes in a row)" in lines
    assert state(checker)["table"] == bucket_owners(["conc1", "conc2", "conc3"], 256)
    assert "flush set inet svpn_lb down\n" in fake.scripts[-1] and "down {" not in fake.scripts[-1]


def test_no_node_up_keeps_the_previous_table(lb) -> None:
    checker, fake, lines = lb
    checker.round()
    applied = checker.applied
    fake.answering.clear()
    for _ in range(3):
        checker.round()
    assert "no node is up and active: keeping the previous bucket table" in lines
    assert checker.applied == applied
    assert state(checker)["table"] == applied


def test_the_table_is_applied_again_after_resync_seconds_without_a_log_line(lb) -> None:
    checker, fake, lines = lb
    checker.round()
    checker.round()
    assert len(fake.scripts) == 1
    clock = checker.host.monotonic
    assert isinstance(clock, Clock)
    clock.now += lbhealth.RESYNC_SECONDS + 1
    logged = len(lines)
    checker.round()
    assert len(fake.scripts) == 2 and fake.scripts[0] == fake.scripts[1]
    assert lines[logged:] == []


def test_a_table_nft_refuses_is_logged_and_not_taken_as_applied(lb) -> None:
    checker, fake, lines = lb
    fake.nft_error = "Error: Could not process rule: No such file or directory\n"
    checker.round()
    assert (
        lines[-1]
        == "bucket table NOT applied: nft said: Error: Could not process rule: No such file or directory"
    )
    assert checker.applied is None


# --------------------------------------------------------------------------- admin states and reloads


def test_admin_state_file_wins_over_backends_and_drains_the_node(lb) -> None:
    checker, fake, lines = lb
    checker.host.admin.write_text(json.dumps({"conc2": "drain"}))
    checker.round()
    assert lines[0] == f"node conc2: admin state active -> drain ({checker.host.admin})"
    assert lines[1] == (
        "watching 3 nodes: conc1=198.18.3.11(active), conc2=198.18.3.12(drain), conc3=198.18.3.13(active)"
    )
    assert lines[2] == "bucket table applied (start or reload): {'conc1': 128, 'conc3': 128}"
    assert fake.scripts[0].endswith("add element inet svpn_lb accepting { 198.18.3.11, 198.18.3.13 }\n")
    assert {n["name"]: n["admin"] for n in state(checker)["nodes"]}["conc2"] == "drain"


def test_draining_at_reload_forgets_stickiness_but_keeps_flows(lb) -> None:
    checker, fake, lines = lb
    checker.round()
    checker.host.admin.write_text(json.dumps({"conc2": "drain"}))
    checker.reload_requested = True  # what SIGHUP does
    checker.round()
    assert state(checker)["table"] == bucket_owners(["conc1", "conc3"], 256)
    assert "node conc2: forgot 2 sticky source addresses" in lines
    assert not fake.deletions()
    # Undrain: the admin state file drops the node, backends.json's state applies again.
    checker.host.admin.write_text("{}")
    checker.reload_requested = True
    checker.round()
    assert f"node conc2: admin state drain -> active ({checker.host.config})" in lines
    assert state(checker)["table"] == bucket_owners(["conc1", "conc2", "conc3"], 256)


def test_a_node_added_at_reload_waits_for_ike_answers(lb) -> None:
    checker, _fake, lines = lb
    checker.round()
    write_backends(checker.host.config, ["conc1", "conc2", "conc3", "conc4"])
    checker.reload_requested = True
    checker.round()
    new = {n["name"]: n for n in state(checker)["nodes"]}["conc4"]
    assert (new["up"], new["reason"]) == (False, "new: waiting for IKE answers")
    assert "conc4" not in state(checker)["table"]
    checker.round()
    assert "node conc4: UP: IKE answered (2 probes in a row)" in lines
    assert state(checker)["table"] == bucket_owners(["conc1", "conc2", "conc3", "conc4"], 256)


def test_nodes_at_start_are_assumed_up_and_removed_ones_are_logged(lb) -> None:
    checker, _fake, lines = lb
    checker.load()
    assert all(n.up and n.reason == "assumed up at start" for n in checker.nodes.values())
    write_backends(checker.host.config, ["conc1", "conc2"])
    checker.load()
    assert "node conc3: removed from backends.json" in lines
    assert list(checker.nodes) == ["conc1", "conc2"]


# --------------------------------------------------------------------------- nft and conntrack


def test_table_script_sets_map_down_and_accepting_in_one_transaction() -> None:
    nodes = [Node("a", "10.0.0.1", "active"), Node("b", "10.0.0.2", "active", up=False)]
    assert table_script(nodes, ["a", "a", "a"]) == (
        "flush map inet svpn_lb buckets\n"
        "add element inet svpn_lb buckets { 0 : 10.0.0.1, 1 : 10.0.0.1, 2 : 10.0.0.1 }\n"
        "flush set inet svpn_lb down\n"
        "flush set inet svpn_lb accepting\n"
        "add element inet svpn_lb down { 10.0.0.2 }\n"
        "add element inet svpn_lb accepting { 10.0.0.1 }\n"
    )


def test_owners_are_the_nodes_up_and_active() -> None:
    nodes = [Node("c", "x", "active"), Node("a", "y", "drain"), Node("b", "z", "active", up=False)]
    assert table_owners(nodes, 4) == ["c"] * 4
    assert table_owners(nodes[1:], 4) is None


def test_table_change_lines() -> None:
    assert table_change(["a", "b", "a"], None) == "bucket table applied (start or reload): {'a': 2, 'b': 1}"
    assert table_change(["a", "b", "a"], ["a", "b", "a"]) is None
    assert table_change(["a", "a", "a"], ["a", "b", "a"]) == (
        "bucket table applied: {'a': 3}; 1 of 3 buckets changed owner"
    )


def test_sticky_map_is_read_from_nft_json() -> None:
    sticky = read_sticky(json.dumps(STICKY))
    assert sticky.complete
    assert sticky.table == {
        "198.18.1.101": "198.18.3.11",
        "198.18.1.102": "198.18.3.12",
        "198.18.1.103": "198.18.3.12",
    }
    assert read_sticky("") == ({}, False)
    assert read_sticky('{"nftables": [{"map": {"elem": [["198.18.1.1"]]}}]}').complete is False


def test_an_unreadable_sticky_map_is_logged(lb) -> None:
    checker, fake, lines = lb
    fake.sticky = ""
    checker.round()
    checker.forget_sticky(checker.nodes["conc1"])
    assert lines[-2:] == ["could not read the sticky map: ", "node conc1: forgot 0 sticky source addresses"]


def test_split_flows_are_found_and_the_ones_off_the_sticky_node_deleted(lb) -> None:
    split = split_flows(FLOWS)
    assert split == {"198.18.1.102": {("198.18.3.11", "500"), ("198.18.3.12", "4500")}}
    assert stray_flows(split, {"198.18.1.102": "198.18.3.12"}) == [
        StrayFlow("198.18.1.102", "500", "198.18.3.11", "198.18.3.12")
    ]
    assert len(stray_flows(split, {})) == 2  # no sticky entry: every flow is stray
    checker, fake, lines = lb
    fake.flows = FLOWS
    checker.round()
    assert ["conntrack", "-L", "-p", "udp", "--orig-dst", VIP] in fake.commands
    assert fake.deletions() == [
        [
            "conntrack",
            "-D",
            "-p",
            "udp",
            "--orig-src",
            "198.18.1.102",
            "--sport",
            "500",
            "--reply-src",
            "198.18.3.11",
        ]
    ]
    assert lines[-1] == (
        "source 198.18.1.102: flow from port 500 was pinned to 198.18.3.11, its other flows to 198.18.3.12: "
        "deleted"
    )


def test_state_json_is_world_readable_and_names_every_node(lb) -> None:
    checker, _fake, _lines = lb
    checker.round()
    path = checker.host.state_dir / "state.json"
    assert path.stat().st_mode & 0o777 == 0o644
    document = state(checker)
    assert document["time"] == 1700000000.0
    assert document["nodes"][0] == {
        "name": "conc1",
        "address": "198.18.3.11",
        "admin": "active",
        "up": True,
        "reason": "assumed up at start",
        "since": 1700000000.0,
    }
    assert [p.name for p in checker.host.state_dir.iterdir()] == ["state.json"]
