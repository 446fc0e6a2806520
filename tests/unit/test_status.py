"""`svpn status` read from what real hosts answered (tests/unit/data/status/, see its README): the
molecule farm (healthy nodes, a node whose charon holds nothing, an SSH host that is not there, a docker
container that is not there) and the lab (a drained node, charon stopped, conntrackd stopped, both LBs
holding the VIP)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from svpn_testing.pki import PASS, make_ca
from svpn_testing.status import farm_status as run_status

from svpn.access.pki import clock
from svpn.access.pki.ca import load_ca
from svpn.access.pki.issuing import issue_server, issue_user
from svpn.access.pki.revocation import write_crl
from svpn.core.ansible_inventory import AnsibleInventory
from svpn.core.errors import SvpnError
from svpn.farm.buckets import bucket_owners
from svpn.helpdesk.answers import to_json
from svpn.helpdesk.remote import HostResult
from svpn.helpdesk.status import farm_status
from svpn.helpdesk.status_hosts import (
    LB_COMMAND,
    MARK,
    ROLE_REVOCATION,
    lb_pair,
    node_status,
    parse_conns,
    parse_lb,
    parse_pools,
    parse_stats,
    parts,
)
from svpn.helpdesk.status_read import pki_dir_of, read_pki

DATA = Path(__file__).resolve().parent / "data" / "status"
ROOT = Path(__file__).resolve().parents[2]


def answers(name: str) -> dict[str, HostResult]:
    return {host: HostResult(**fields) for host, fields in json.loads((DATA / name).read_text()).items()}


FARM_NODES = answers("farm-concentrators.json")
FARM_LBS = answers("farm-loadbalancers.json")
LAB_NODES = answers("lab-broken-concentrators.json")
LAB_LBS = answers("lab-broken-loadbalancers.json")
LAB_SPLIT = answers("lab-split-loadbalancers.json")


# --------------------------------------------------------------------------- concentrators


def test_a_healthy_node_reports_its_users_pool_and_connection() -> None:
    node = node_status("farm-conc1", FARM_NODES["farm-conc1"], {"farm-lb1": "active", "farm-lb2": "active"})
    assert (node.state, node.why, node.reachable) == ("active", "", True)
    assert (node.users, node.ike_sas, node.half_open) == (2, 2, 0)
    assert [(p.name, p.size, p.online) for p in node.pools] == [("pool-farm-conc1", 254, 2)]
    assert node.connections == ("svpn",)
    assert node.inventory_state == "active" and not node.drain_table
    assert node.charon_since.endswith("2026")


def test_a_node_whose_charon_holds_nothing_is_down_and_says_so() -> None:
    node = node_status("farm-conc3", FARM_NODES["farm-conc3"], {})
    assert node.state == "down" and node.reachable
    assert "no connection and virtual IP pool loaded" in node.why
    assert node.users == 0  # charon answered: its counts are still shown


def test_an_ssh_host_that_is_not_there_is_unreachable() -> None:
    node = node_status("farm-conc8", FARM_NODES["farm-conc8"], {})
    assert (node.state, node.reachable, node.users, node.pools) == ("down", False, None, ())
    assert node.why.startswith("unreachable:") and "No route to host" in node.why


def test_a_host_where_the_command_cannot_run_says_what_the_connection_said() -> None:
    node = node_status("farm-conc9", FARM_NODES["farm-conc9"], {})
    assert node.state == "down"
    assert (
        node.why
        == "the command could not run there: Error response from daemon: No such container: farm-conc9"
    )


def test_a_drained_node_says_who_drains_it() -> None:
    node = node_status("conc2", LAB_NODES["conc2"], {"lb1": "drain", "lb2": "drain"})
    assert (node.state, node.drain_table, node.users) == ("draining", True, 0)
    assert node.why == (
        "the node refuses new IKE SAs (nft table inet svpn_drain); admin state drain on lb1, lb2"
    )
    # the inventory still says active: drain.yml sets the runtime state, not the inventory
    assert node.inventory_state == "active"


def test_a_node_whose_charon_is_stopped_is_down_with_swanctl_s_words() -> None:
    node = node_status("conc3", LAB_NODES["conc3"], {})
    assert (node.state, node.reachable, node.users) == ("down", True, None)
    assert node.why == (
        "charon not answering: connecting to 'unix:///var/run/charon.vici' failed: Connection refused"
    )


def test_a_node_without_any_answer_is_down() -> None:
    assert node_status("conc7", None, {}).why == "Ansible gave no result for it"


def test_parts_survive_a_file_without_its_last_newline() -> None:
    text = f'{MARK}state\n{{"a": 1}}\n{MARK}state-rc 0\n{MARK}other x\n'
    found = parts(text)
    assert json.loads(found["state"].text) == {"a": 1} and found["state"].rc == 0
    assert found["other"].value == "x" and found["other"].rc is None


def test_parsers_refuse_what_is_not_charon_s_answer() -> None:
    refused = "connecting to 'unix:///var/run/charon.vici' failed: Connection refused"
    assert parse_stats(refused) is None
    assert parse_pools(refused) == [] and parse_conns(refused) == []


# --------------------------------------------------------------------------- load balancers


def test_the_lb_holding_the_vips_reports_daemons_view_and_the_shared_bucket_table() -> None:
    lb, table = parse_lb("farm-lb1", FARM_LBS["farm-lb1"])
    assert lb.reachable and lb.why == ""
    assert (lb.public_vip, lb.holds_public_vip, lb.inside_vip, lb.holds_inside_vip) == (
        "198.18.21.10",
        True,
        "198.18.23.10",
        True,
    )
    assert [(d.name, d.state) for d in lb.daemons] == [
        ("keepalived", "active"),
        ("conntrackd", "active"),
        ("svpn-lb-health", "active"),
    ]
    assert [(v.node, v.up, v.admin) for v in lb.view] == [
        ("farm-conc1", True, "active"),
        ("farm-conc2", True, "active"),
        ("farm-conc3", True, "active"),
    ]
    assert lb.view_age is not None and 0 <= lb.view_age < 5
    # the checker's table is the one svpn.farm.buckets computes for the nodes that are up and active
    assert table == bucket_owners(["farm-conc1", "farm-conc2", "farm-conc3"], len(table))
    assert sum(c.buckets for c in lb.buckets) == len(table) == 256


def test_the_standby_lb_holds_no_vip() -> None:
    lb, table = parse_lb("farm-lb2", FARM_LBS["farm-lb2"])
    assert lb.reachable and not lb.holds_public_vip and not lb.holds_inside_vip and len(table) == 256


def test_the_pair_names_the_holder_and_the_buckets_that_differ() -> None:
    (lb1, t1), (lb2, t2) = (
        parse_lb("farm-lb1", FARM_LBS["farm-lb1"]),
        parse_lb("farm-lb2", FARM_LBS["farm-lb2"]),
    )
    pair = lb_pair([lb1, lb2], {"farm-lb1": t1, "farm-lb2": t2})
    assert [(v.vip, v.holders, v.verdict) for v in pair.vips] == [
        ("public", ("farm-lb1",), "ok"),
        ("inside", ("farm-lb1",), "ok"),
    ]
    assert pair.table_from == "farm-lb1" and pair.differences == ()
    changed = list(t2)
    changed[0] = changed[1] = "farm-conc9"
    pair = lb_pair([lb1, lb2], {"farm-lb1": t1, "farm-lb2": changed})
    assert (
        pair.differences == (pair.differences[0],)
        and "farm-lb2's table differs from farm-lb1's in 2 of 256 buckets" in pair.differences[0]
    )


def test_an_lb_that_cannot_be_reached_is_shown_as_such() -> None:
    lb, table = parse_lb("farm-lb9", FARM_LBS["farm-lb9"])
    assert not lb.reachable and table == [] and "No such container: farm-lb9" in lb.why


def test_a_stopped_daemon_a_node_seen_down_and_a_drained_node_on_the_lbs() -> None:
    lb, table = parse_lb("lb2", LAB_LBS["lb2"])
    assert [(d.name, d.state) for d in lb.daemons if d.state != "active"] == [("conntrackd", "inactive")]
    assert [(v.node, v.up, v.admin) for v in lb.view] == [
        ("conc1", True, "active"),
        ("conc2", True, "drain"),
        ("conc3", False, "active"),
    ]
    assert "no IKE answer" in lb.view[2].reason
    assert set(table) == {"conc1"}  # the only node up and active owns every bucket


def test_both_lbs_holding_the_vip_is_split_brain() -> None:
    read = {name: parse_lb(name, result) for name, result in LAB_SPLIT.items()}
    pair = lb_pair([lb for lb, _ in read.values()], {name: table for name, (_, table) in read.items()})
    public = pair.vips[0]
    assert (public.vip, public.holders, public.verdict) == ("public", ("lb1", "lb2"), "split brain")
    assert pair.table_from == "lb1"  # no single holder: the first LB's table is counted


def test_the_lb_command_asks_every_daemon_the_role_checks() -> None:
    healthy = yaml.safe_load((ROOT / "roles" / "loadbalancer" / "tasks" / "healthy.yml").read_text())
    loop = next(task["loop"] for task in healthy if "loop" in task)
    assert all(daemon in LB_COMMAND for daemon in loop)


# --------------------------------------------------------------------------- the farm


def farm(nodes: dict[str, HostResult | None], lbs: dict[str, HostResult | None]) -> Any:
    return farm_status("inv", "2026-11-30T10:35:00Z", nodes, lbs, None)


def test_a_healthy_farm_has_no_problem_and_exits_0() -> None:
    status = farm(
        {n: FARM_NODES[n] for n in ("farm-conc1", "farm-conc2")},
        {n: FARM_LBS[n] for n in ("farm-lb1", "farm-lb2")},
    )
    assert status.problems == () and status.exit_code == 0
    assert json.loads(json.dumps(to_json(status)))["pair"]["table_from"] == "farm-lb1"


def test_every_host_down_is_a_problem_and_the_rest_is_still_reported() -> None:
    status = farm(dict(FARM_NODES), dict(FARM_LBS))
    assert status.exit_code == 1
    assert [p.split(" ")[0] for p in status.problems] == [
        "farm-conc3",
        "farm-conc8",
        "farm-conc9",
        "farm-lb9",
    ]
    # the LBs count the node whose charon holds nothing as up: they still send it users
    assert "farm-lb1, farm-lb2 still count it up and send it new users" in status.problems[0]
    assert [n.users for n in status.nodes] == [2, 2, 0, None, None]
    assert status.pair.vips[0].holders == ("farm-lb1",)


def test_the_broken_lab_lists_each_problem_once_and_its_drain_as_a_note() -> None:
    status = farm(dict(LAB_NODES), dict(LAB_SPLIT))
    assert [n.state for n in status.nodes] == ["active", "draining", "down"]
    assert status.problems == (
        "conc3 is down: charon not answering: connecting to 'unix:///var/run/charon.vici' failed: Connection "
        "refused; lb1, lb2 see it down too and send its users to the others",
        "lb2: conntrackd is inactive",
        "split brain: lb1 and lb2 each hold the public VIP 198.18.1.10 (keepalived's VRRP between them is "
        "broken)",
    )
    assert status.notes == (
        "conc2 drains (no new users): the node refuses new IKE SAs (nft table inet svpn_drain); admin state "
        "drain on lb1, lb2",
    )


def test_a_node_refusing_new_sas_that_no_lb_drains_is_a_half_done_drain() -> None:
    status = farm({"conc2": LAB_NODES["conc2"]}, {})
    assert status.nodes[0].drained_on == () and status.problems == ()
    assert "conc2 refuses new IKE SAs but no LB has it in admin state drain" in status.notes[1]


def test_no_concentrators_at_all_is_a_problem() -> None:
    assert farm({}, {}).problems == ("inv: the inventory has no host in group concentrators",)


def test_the_fail_closed_default_is_the_role_s() -> None:
    defaults = yaml.safe_load((ROOT / "roles" / "concentrator" / "defaults" / "main.yml").read_text())
    assert defaults["concentrator_revocation"] == ROLE_REVOCATION


# --------------------------------------------------------------------------- certificates


def test_the_pki_part_lists_every_end_and_the_users_close_to_theirs(tmp_path: Path) -> None:
    pki_dir = make_ca(tmp_path / "pki")
    ca = load_ca(pki_dir, PASS)
    issue_server(pki_dir, ca, "farm-conc1", ["vpn.example.org"])
    issue_user(pki_dir, ca, "jiwoo", email="jiwoo@example.org", name="김지우", days=3)
    issue_user(pki_dir, ca, "bob", days=400)
    write_crl(pki_dir, ca, days=2)
    now = clock.now()
    pki = read_pki(pki_dir, now, days=14)
    assert [(c.kind, c.name, c.soon) for c in pki.certificates] == [
        ("ca", "Test VPN CA", False),
        ("server", "farm-conc1", False),
        ("crl", "crl", True),  # 2 days left: within the CRL's 3-day window
    ]
    assert (pki.users_expiring, [u.id for u in pki.first_expiring], pki.users_expired) == (1, ["jiwoo"], 0)
    status = farm_status("inv", clock.iso(now), {"farm-conc1": FARM_NODES["farm-conc1"]}, {}, pki)
    assert status.exit_code == 1 and len(status.problems) == 1
    assert (
        status.problems[0].startswith("CRL expires on")
        and "(farm-conc1) refuse EVERY user" in status.problems[0]
    )
    assert any("1 user certificate(s) end within 14 days: jiwoo" in note for note in status.notes)

    later = read_pki(pki_dir, now + dt.timedelta(days=5), days=14)
    assert (later.users_expiring, later.users_expired) == (0, 1)
    assert later.crl is not None and later.crl.days_left is not None and later.crl.days_left < 0


def test_a_missing_pki_is_reported_not_fatal(tmp_path: Path) -> None:
    status = farm_status("inv", "t", {"farm-conc1": FARM_NODES["farm-conc1"]}, {}, None, "no CA in /x")
    assert status.problems == ("certificates not checked: no CA in /x",)


# --------------------------------------------------------------------------- svpn_pki_dir


def inventory_with(pki_dir: str) -> AnsibleInventory:
    return AnsibleInventory(groups={}, hostvars={}, all_vars={"svpn_pki_dir": pki_dir})


def test_playbook_dir_is_the_repository_s_playbooks(tmp_path: Path) -> None:
    inventory = tmp_path / "inventories" / "lab"
    got = pki_dir_of(inventory, inventory_with("{{ playbook_dir }}/../.lab/pki"))
    assert got == (tmp_path / ".lab" / "pki").resolve()


def test_lookups_run_as_in_a_play(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SVPN_STATUS_TEST_DIR", str(tmp_path))
    got = pki_dir_of(
        tmp_path, inventory_with("{{ lookup('ansible.builtin.env', 'SVPN_STATUS_TEST_DIR') }}/pki")
    )
    assert got == (tmp_path / "pki").resolve()


@pytest.mark.parametrize("value", ["{{ nowhere_defined }}/pki", ""])
def test_a_pki_dir_that_cannot_be_found_asks_for_pki(tmp_path: Path, value: str) -> None:
    with pytest.raises(SvpnError, match="--pki DIR"):
        pki_dir_of(tmp_path, inventory_with(value))


# --------------------------------------------------------------------------- the text


def test_the_text_shows_every_host_and_each_problem() -> None:
    status = farm(dict(FARM_NODES), dict(FARM_LBS))
    status = dataclasses.replace(status, checked_at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC).isoformat())
    from svpn.cli.status import render

    console = Console(record=True, width=200)
    render(console, status)
    text = console.export_text()
    for host in [*FARM_NODES, *FARM_LBS]:
        assert host in text
    assert "4 problem(s):" in text and "public VIP 198.18.21.10: held by farm-lb1" in text
    assert "bucket owners (farm-lb1's table): farm-conc1 85, farm-conc2 85, farm-conc3 86" in text


def test_a_status_that_cannot_be_taken_exits_2_with_one_line(tmp_path: Path) -> None:
    run = run_status(tmp_path / "no-such-inventory")
    assert (run.exit_code, run.status) == (2, {})
    assert run.stderr.strip() == (
        f"svpn: error: --inventory: {tmp_path / 'no-such-inventory'} is not a directory; give the farm's "
        "inventory directory"
    )
