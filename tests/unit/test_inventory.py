"""svpn.inventory (YAML writer, render, read, grow, tree) and the `svpn plan` / `svpn inventory check`
commands."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from svpn.core.errors import SvpnError
from svpn.inventory.grow import existing_farm
from svpn.inventory.render import (
    all_entries,
    concentrator_entries,
    hosts_entries,
    render_inventory,
    render_tree,
)
from svpn.inventory.schema import ALL_VARS, HOSTS, LB_VARS, TUNING_KEYS, host_vars_path
from svpn.inventory.tree import check_files, load_files, read_tree, tree_diff
from svpn.inventory.yamlout import Entry, emit_yaml, entries_data, yaml_scalar
from svpn.planning.defaults import DEFAULT_ESP_PROPOSALS, DEFAULT_IKE_PROPOSALS, DEFAULT_INPUT
from svpn.planning.inputs import resolve_input
from svpn.planning.layout import INSIDE_VIP_HOST_OFFSET, LB_HOST_OFFSETS, VIP_HOST_OFFSET
from svpn.planning.model import Plan
from svpn.planning.plan import make_plan

Run = Callable[..., tuple[int, str, str]]
ROOT = Path(__file__).resolve().parents[2]


MANAGEMENT = "198.18.73.0/24"  # where the tests' controller would reach the hosts from over SSH
MGMT = ("--management-networks", MANAGEMENT)


def make(users: int = 10000, **values: Any) -> Plan:
    values.setdefault("management_networks", [MANAGEMENT])
    return make_plan(resolve_input([({"users": users, **values}, "test")]))


@pytest.fixture
def run(cli: Run) -> Run:
    """``svpn.cli.main(argv)`` -> (exit code, stdout, stderr)."""
    return cli


def tree(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------- the emitter


@pytest.mark.parametrize(
    "value",
    [
        "yes",
        "no",
        "on",
        "null",
        "~",
        "",
        "1.0",
        "0x10",
        "010",
        "N+1",
        "{{ playbook_dir }}/../pki",
        "a: b",
        "# x",
        "198.18.70.100",
        "198.19.0.0/16",
        "- item",
        "'q'",
        'say "hi"',
        "tab\there",
        "ünïcode",
        "2026-11-25",
    ],
)
def test_scalars_round_trip(value: str) -> None:
    assert yaml.safe_load(f"k: {yaml_scalar(value)}") == {"k": value}


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.text(max_size=300)
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.booleans(),
        max_size=5,
    )
)
def test_the_emitter_writes_what_safe_load_reads(data: dict[str, Any]) -> None:
    entries = [Entry(key, value, "a comment " * 20) for key, value in data.items()]
    text = emit_yaml(["# header"], entries)
    assert yaml.safe_load(text) == (data or None)
    assert all(len(line) <= 120 or not line.lstrip().startswith("#") for line in text.splitlines())


def test_long_strings_fold_within_the_line_limit() -> None:
    value = "default: " + "word " * 60 + "end"
    text = emit_yaml([], [Entry("outer", (Entry("k", value),))])
    assert "k: >-" in text and max(len(line) for line in text.splitlines()) <= 110
    assert yaml.safe_load(text) == {"outer": {"k": value}}


# --------------------------------------------------------------------------- rendering


def test_every_yaml_file_loads_as_the_plans_data() -> None:
    farm = make()
    files = render_inventory(farm)
    assert yaml.safe_load(files[HOSTS]) == entries_data(hosts_entries(farm))
    assert yaml.safe_load(files[ALL_VARS]) == entries_data(all_entries(farm))
    assert yaml.safe_load(files[LB_VARS]) == {"loadbalancer_buckets": 256}
    for node in farm.concentrators:
        data = yaml.safe_load(files[host_vars_path(node.name)])
        assert data == entries_data(concentrator_entries(farm, node))
        assert data["concentrator_pool"] == str(node.pool)
        assert data["svpn_addresses"] == {"inside": str(node.inside), "internal": str(node.internal)}
    assert yaml.safe_load(files["host_vars/lb2.yml"]) == {
        "svpn_addresses": {"public": "198.18.70.12", "inside": "198.18.71.12"},
        "loadbalancer_vrrp_priority": 100,
    }
    assert yaml.safe_load(files["host_vars/lb1.yml"])["loadbalancer_vrrp_priority"] == 150


def test_contract_layout_and_values() -> None:
    files = render_inventory(make(500))
    hosts = yaml.safe_load(files[HOSTS])
    assert hosts == {
        "all": {
            "children": {
                "loadbalancers": {"hosts": {"lb1": {}, "lb2": {}}},
                "concentrators": {"hosts": {"conc1": {}, "conc2": {}}},
            }
        }
    }
    farm = yaml.safe_load(files[ALL_VARS])
    assert farm["svpn_networks"] == {
        "public": "198.18.70.0/24",
        "inside": "198.18.71.0/24",
        "internal": "198.18.72.0/24",
    }
    assert farm["svpn_pki_dir"] == "{{ playbook_dir }}/../pki"
    assert (farm["svpn_public_address"], farm["svpn_lb_inside_address"]) == ("198.18.70.100", "198.18.71.10")
    assert farm["svpn_ike_proposals"] == list(DEFAULT_IKE_PROPOSALS)
    assert farm["svpn_esp_proposals"] == list(DEFAULT_ESP_PROPOSALS)
    assert (farm["svpn_users"], farm["svpn_peak_concurrency_percent"], farm["svpn_tunnel_mode"]) == (
        500,
        100,
        "split",
    )
    conc = yaml.safe_load(files["host_vars/conc1.yml"])
    assert set(conc) == {"svpn_addresses", "concentrator_pool", *TUNING_KEYS}


def test_files_start_with_provenance_and_derived_numbers_are_explained() -> None:
    farm = make()
    files = render_inventory(farm)
    for path, text in files.items():
        lines = text.splitlines()
        assert lines[0].startswith("# Written by `svpn plan` (svpn ") and farm.input_hash in lines[1], path
        for i, line in enumerate(lines):
            if line.startswith(("concentrator_", "svpn_addresses", "loadbalancer_buckets")):
                assert lines[i - 1].lstrip().startswith("#"), f"{path}: {line} has no comment"
            assert len(line) <= 120, f"{path}: line {i + 1} is too long"


def test_rendering_is_deterministic_and_the_hash_follows_the_input() -> None:
    assert render_tree(make()) == render_tree(make())
    assert make().input_hash != make(10001).input_hash
    assert make().input_hash != make(dns=["198.18.72.53"]).input_hash


# --------------------------------------------------------------------------- checking


def edit(files: dict[str, str], path: str, change: Callable[[Any], None]) -> dict[str, str]:
    data = yaml.safe_load(files[path])
    change(data)
    return {**files, path: yaml.safe_dump(data)}


def test_a_rendered_inventory_has_no_problems() -> None:
    assert check_files(render_tree(make())) == []
    assert check_files(render_tree(make(500, redundancy="N+2"))) == []


def test_every_problem_is_listed() -> None:
    files = render_tree(make())

    def conc2(data: Any) -> None:
        data["concentrator_pool"] = "198.19.0.0/24"  # inside conc1's pool, and far too small
        data["svpn_addresses"]["inside"] = "198.18.71.21"  # conc1's address
        data["concentrator_ikesa_table_size"] = 1000

    files = edit(files, "host_vars/conc2.yml", conc2)
    files = edit(files, "host_vars/conc3.yml", lambda d: d.update(concentrator_pool="10.0.0.0/19"))
    files = edit(files, ALL_VARS, lambda d: d.update(svpn_userz=1, svpn_peak_concurrency_percent=150))
    del files["host_vars/conc4.yml"]
    files["host_vars/conc9.yml"] = files["host_vars/conc1.yml"]
    problems = "\n".join(check_files(files))
    expected = [
        "host conc2: svpn_addresses.inside 198.18.71.21 is also used by conc1",
        "host conc2: concentrator_ikesa_table_size: 1000; valid: 256, 512",
        "host conc1: concentrator_pool 198.19.0.0/19 overlaps conc2's 198.19.0.0/24",
        "host conc3: concentrator_pool 10.0.0.0/19 is outside the supernet 198.19.0.0/16",
        "svpn_userz: unknown farm-wide setting",
        "svpn_peak_concurrency_percent: 150 is outside 1-100",
        "host_vars/conc4.yml: missing",
        "host conc4: concentrator_pool missing",
        "host_vars/conc9.yml: no such host in hosts.yml",
    ]
    for item in expected:
        assert item in problems


def test_pool_capacity_is_checked_against_the_planned_users() -> None:
    files = render_tree(make())
    files = edit(files, ALL_VARS, lambda d: d.update(svpn_users=40000))
    problems = check_files(files)
    assert len(problems) == 4
    assert (
        "after 1 of 4 nodes fail a survivor may carry 13,438 of the 40,000 concurrent users (N+1)"
        in problems[0]
    )


def test_duplicate_host_names_and_overlapping_networks_are_found() -> None:
    files = render_tree(make(500))
    files[HOSTS] = files[HOSTS].replace("        conc2: {}", "        conc2: {}\n        conc1: {}")
    files[HOSTS] = files[HOSTS].replace("        lb2: {}", "        lb2: {}\n        conc2: {}")
    files = edit(files, ALL_VARS, lambda d: d["svpn_networks"].update(inside="198.18.70.128/25"))
    problems = "\n".join(check_files(files))
    assert "hosts.yml: line 19: duplicate key 'conc1' (names and keys must be unique)" in problems
    assert "host conc2: both a load balancer and a concentrator" in problems
    assert "svpn_networks.public 198.18.70.0/24 overlaps svpn_networks.inside 198.18.70.128/25" in problems


def test_broken_files_are_problems_not_crashes() -> None:
    files = render_tree(make(500))
    files["host_vars/conc1.yml"] = "svpn_addresses: [unclosed\n"
    files[LB_VARS] = "loadbalancer_buckets: 1\n"
    files["host_vars/lb1.yml"] = "- a list\n"
    del files[ALL_VARS]
    problems = "\n".join(check_files(files))
    assert "host_vars/conc1.yml: not valid YAML" in problems
    assert "loadbalancer_buckets: 1; give a whole number >= the 2 concentrators" in problems
    assert "host_vars/lb1.yml: the document must be a mapping" in problems
    assert "group_vars/all.yml: missing" in problems


# --------------------------------------------------------------------------- growth


def test_reading_back_a_rendered_inventory_reproduces_it_byte_for_byte() -> None:
    farm = make(dns=["198.18.72.53"], headroom_percent=30, concurrency_percent=80.5)
    files = render_tree(farm)
    layer, existing, kept = existing_farm(load_files(files), "test")
    again = make_plan(resolve_input([(layer, "inventory")]), existing)
    assert again.input_hash == farm.input_hash
    assert render_tree(again, kept) == files


def test_growth_carries_over_what_the_operator_added() -> None:
    """ansible_host in hosts.yml (as the lab does), other groups, and keys the planner does not own."""
    files = render_tree(make(4000, ike_sas_per_node=2000))
    hosts = yaml.safe_load(files[HOSTS])
    hosts["all"]["children"]["concentrators"]["hosts"]["conc1"] = {"ansible_host": "vpn-c1.city.example"}
    hosts["all"]["children"]["monitoring"] = {"hosts": {"mon1": None}}
    files[HOSTS] = yaml.safe_dump(hosts, sort_keys=False)
    files[ALL_VARS] += "ansible_user: admin\nntp_servers: [198.18.72.123]\n"
    files[LB_VARS] += "loadbalancer_health_fall: 3\n"
    assert check_files(files) == []

    layer, existing, kept = existing_farm(load_files(files), "test")
    grown = make_plan(resolve_input([(layer, "inventory"), ({"users": 8000}, "flags")]), existing)
    new = render_tree(grown, kept)
    hosts = yaml.safe_load(new[HOSTS])["all"]["children"]
    assert hosts["concentrators"]["hosts"]["conc1"] == {"ansible_host": "vpn-c1.city.example"}
    assert list(hosts["concentrators"]["hosts"]) == [f"conc{i}" for i in range(1, 7)]
    assert hosts["monitoring"] == {"hosts": {"mon1": None}}
    farm = yaml.safe_load(new[ALL_VARS])
    assert (farm["ansible_user"], farm["ntp_servers"], farm["svpn_users"]) == (
        "admin",
        ["198.18.72.123"],
        8000,
    )
    assert yaml.safe_load(new[LB_VARS]) == {"loadbalancer_buckets": 256, "loadbalancer_health_fall": 3}
    assert check_files(new) == []


def test_growth_refuses_what_it_cannot_carry_over() -> None:
    files = render_tree(make(500))
    files[ALL_VARS] += "routes:\n  - {to: 10.0.0.0/8, via: 198.18.72.1}\n"
    with pytest.raises(SvpnError, match=r"group_vars/all.yml.routes: list values .* not carried over"):
        existing_farm(load_files(files), "test")
    with pytest.raises(SvpnError, match=r"has problems: host_vars/conc2\.yml: missing; .*host conc2: con"):
        existing_farm(
            load_files({k: v for k, v in render_tree(make(500)).items() if k != "host_vars/conc2.yml"}), "t"
        )


def test_tree_diff_shows_new_and_changed_files() -> None:
    diff = tree_diff(
        {"a.yml": "x: 1\n", ".capacity.svg": "<svg/>"},
        {"a.yml": "x: 2\n", "b.yml": "y: 1\n", ".capacity.svg": "<svg></svg>"},
        "inv",
    )
    assert "--- a/inv/a.yml\n+++ b/inv/a.yml" in diff and "-x: 1\n+x: 2" in diff
    assert "--- /dev/null\n+++ b/inv/b.yml" in diff
    assert "inv/.capacity.svg: chart redrawn" in diff


# --------------------------------------------------------------------------- the commands


def test_plan_options_help_shows_the_planners_current_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The help texts are built from DEFAULT_INPUT and the layout's host offsets, so they cannot drift."""
    from svpn.cli import plan as cli_plan

    helps = {param.name: param.help or "" for param in cli_plan.plan.params}
    no_default_shown = ("users", "ike_proposals", "esp_proposals", "pki_dir")
    expected = {
        key: (",".join(value) or "none") if isinstance(value, list) else str(value)
        for key, value in DEFAULT_INPUT.items()
        if key not in no_default_shown and value is not None and not isinstance(value, bool)
    }
    expected |= {
        "esp_pfs_optional": "optional" if DEFAULT_INPUT["esp_pfs_optional"] else "required",
        "vip": f"host .{VIP_HOST_OFFSET} of the public network",
        "lb_addresses": "hosts " + ",".join(f".{offset}" for offset in LB_HOST_OFFSETS) + " of the public",
        "inside_vip": f"host .{INSIDE_VIP_HOST_OFFSET} of inside",
        "internal_networks": "the internal network",
    }
    assert set(expected) == set(DEFAULT_INPUT) - set(no_default_shown)
    for key, text in expected.items():
        assert f"[{text}" in helps[key], key
    monkeypatch.setitem(DEFAULT_INPUT, "cores", 6)
    assert cli_plan.shown_default("cores") == "6"


def test_plan_without_out_prints_and_writes_nothing(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _err = run("plan", *MGMT, "--users", "10000")
    assert code == 0 and "Nodes: 4 (3 nodes carry 10,000 concurrent users" in out
    code, out, _err = run("plan", *MGMT, "--users", "10000", "--profile", "video-tunnel", "--json")
    assert code == 0 and json.loads(out)["node_count"] == 9 and json.loads(out)["binding"] == "throughput"
    assert list(tmp_path.iterdir()) == []


def test_plan_out_writes_check_passes_and_a_rerun_changes_nothing(run: Run, tmp_path: Path) -> None:
    out_dir = tmp_path / "inv"
    code, _out, err = run("plan", *MGMT, "--users", "500", "--out", out_dir)
    assert code == 0 and "wrote 9 file(s)" in err
    first = tree(out_dir)
    assert set(first) == {
        "hosts.yml",
        "group_vars/all.yml",
        "group_vars/loadbalancers.yml",
        "host_vars/conc1.yml",
        "host_vars/conc2.yml",
        "host_vars/lb1.yml",
        "host_vars/lb2.yml",
        "CAPACITY.md",
        ".capacity.svg",
    }
    code, _out, err = run("plan", *MGMT, "--users", "500", "--out", out_dir)
    assert code == 0 and "is up to date" in err and tree(out_dir) == first
    code, out, _err = run("inventory", "check", out_dir)
    assert code == 0 and "OK (2 concentrators, 2 load balancers, 500 users" in out


def test_plan_out_refuses_to_replace_a_different_inventory(run: Run, tmp_path: Path) -> None:
    out_dir = tmp_path / "inv"
    run("plan", *MGMT, "--users", "10000", "--out", out_dir)
    before = tree(out_dir)
    code, _out, err = run("plan", *MGMT, "--users", "500", "--out", out_dir)
    assert code == 2 and "already holds an inventory that differs" in err and "--force" in err
    assert tree(out_dir) == before
    code, _out, _err = run("plan", *MGMT, "--users", "500", "--out", out_dir, "--force")
    assert code == 0 and not (out_dir / "host_vars/conc3.yml").exists()
    assert run("inventory", "check", out_dir)[0] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--users", "0"], "svpn: error: users (--users): 0 is outside 1-10,000,000"),
        (["--users", "-3"], "users (--users): -3 is outside"),
        (
            ["--users", "500", "--concurrency", "150"],
            "concurrency_percent (--concurrency): 150 is outside 1-100",
        ),
        (["--users", "500", "--concurrency", "0"], "concurrency_percent (--concurrency): 0 is outside 1-100"),
        (
            ["--users", "10000", "--supernet", "198.19.0.0/20"],
            "supernet (--supernet): 198.19.0.0/20 is too small",
        ),
        (["--users", "500", "--inside-network", "198.18.70.0/24"], "networks overlap: public_network"),
        (["--users", "500", "--supernet", "198.18.72.0/22"], "networks overlap: internal_network"),
        (["--users", "500", "--profile", "games"], "Invalid value for '--profile'"),
        (
            ["--users", "500", "--lb-addresses", "1.2.3.4,198.18.70.12"],
            "lb_addresses (--lb-addresses): 1.2.3.4",
        ),
    ],
)
def test_bad_input_exits_2_with_the_field_and_writes_nothing(
    run: Run, tmp_path: Path, argv: list[str], message: str
) -> None:
    code, _out, err = run("plan", *MGMT, *argv, "--out", tmp_path / "inv")
    assert code == 2 and message in err and "Traceback" not in err
    if message.startswith("svpn: error"):
        assert err.count("\n") == 1  # one line
    assert not (tmp_path / "inv").exists()


def test_plan_refuses_weak_crypto_exits_2_and_writes_nothing(run: Run, tmp_path: Path) -> None:
    out_dir = tmp_path / "inv"
    argv = ["--users", "500", "--ike-proposals", "3des-sha1-modp1024", "--esp-proposals", "null"]
    code, out, err = run("plan", *MGMT, *argv, "--out", out_dir)
    assert (code, out) == (2, "") and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(
        "svpn: error: crypto policy: ike_proposals (--ike-proposals) -> svpn_ike_proposals: "
    )
    assert "IKE proposal '3des-sha1-modp1024' is refused by the crypto policy: 3des: 3DES" in err
    assert "esp_proposals (--esp-proposals) -> svpn_esp_proposals: ESP proposal 'null' is refused" in err
    assert not out_dir.exists()
    # nor over an existing inventory, even with --force
    assert run("plan", *MGMT, "--users", "500", "--out", out_dir)[0] == 0
    before = tree(out_dir)
    code, _out, err = run("plan", *MGMT, *argv, "--out", out_dir, "--force")
    assert code == 2 and "crypto policy" in err and tree(out_dir) == before
    code, _out, err = run("plan", "--from", out_dir, "--esp-proposals", "aes256gcm16", "--out", out_dir)
    assert code == 2 and "ESP proposal 'aes256gcm16' has no DH group" in err and tree(out_dir) == before


def test_plan_esp_pfs_optional_is_written_checked_and_kept_when_growing(run: Run, tmp_path: Path) -> None:
    out_dir = tmp_path / "inv"
    argv = ["--users", "500", "--esp-proposals", "aes256gcm16-ecp384,aes128gcm16", "--esp-pfs-optional"]
    assert run("plan", *MGMT, *argv, "--out", out_dir)[0] == 0
    farm = yaml.safe_load((out_dir / ALL_VARS).read_text())
    assert farm["svpn_esp_pfs_optional"] is True and farm["svpn_esp_proposals"][1] == "aes128gcm16"
    assert run("inventory", "check", out_dir)[0] == 0
    code, out, _err = run("plan", "--from", out_dir, "--users", "600", "--json")  # the stored opt-out holds
    assert code == 0 and json.loads(out)["input"]["esp_pfs_optional"] is True
    code, _out, err = run("plan", "--from", out_dir, "--esp-pfs-required")
    assert code == 2 and "ESP proposal 'aes128gcm16' has no DH group" in err
    # taking the opt-out away by hand: the check (and so check.yml) refuses the farm
    all_yml = out_dir / ALL_VARS
    all_yml.write_text(
        all_yml.read_text().replace("svpn_esp_pfs_optional: true", "svpn_esp_pfs_optional: false")
    )
    code, _out, err = run("inventory", "check", out_dir)
    assert code == 1 and f"{out_dir}: svpn_esp_proposals: ESP proposal 'aes128gcm16' has no DH group" in err


def test_inventory_check_refuses_weak_crypto_in_a_planned_inventory(run: Run, tmp_path: Path) -> None:
    out_dir = tmp_path / "inv"
    run("plan", *MGMT, "--users", "500", "--out", out_dir)
    all_yml = out_dir / ALL_VARS
    text = all_yml.read_text()
    all_yml.write_text(
        text.replace("  - aes128gcm16-prfsha256-ecp256\n", "  - 3des-sha1-modp1024\n")
        .replace("  - aes128gcm16-ecp256\n", "  - 'null'\n  - aes256gcm16\n")  # unquoted: YAML null
        .replace("svpn_esp_pfs_optional: false", "svpn_esp_pfs_optional: maybe")
    )
    code, _out, err = run("inventory", "check", out_dir)
    lines = err.strip().splitlines()
    assert code == 1 and "Traceback" not in err and len(lines) == 5
    assert lines[0] == f"{out_dir}: svpn_esp_pfs_optional must be true or false, got str: 'maybe'"
    assert "svpn_ike_proposals: IKE proposal '3des-sha1-modp1024' is refused by the crypto policy" in lines[1]
    assert "svpn_esp_proposals: ESP proposal 'null' is refused by the crypto policy" in lines[2]
    assert "svpn_esp_proposals: ESP proposal 'aes256gcm16' has no DH group" in lines[3]
    # an inventory planned before svpn_esp_pfs_optional existed: the default (false) applies
    all_yml.write_text(text.replace("svpn_esp_pfs_optional: false\n", ""))
    assert run("inventory", "check", out_dir)[0] == 0
    code, out, _err = run("plan", "--from", out_dir, "--json")
    assert code == 0 and json.loads(out)["input"]["esp_pfs_optional"] is False


def test_plan_file_and_calibration(run: Run, tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.yml"
    plan_file.write_text("users: 10000\nprofile: video-split\nheadroom_percent: 20\n")
    calibration = tmp_path / "cal.json"
    calibration.write_text(json.dumps({"ike_sas_per_node": 2500, "setup_rate_per_core": 300}))
    code, out, _err = run("plan", "--plan", plan_file, "--calibration", calibration, "--json")
    data = json.loads(out)
    assert code == 0 and data["input"]["profile"] == "video-split" and data["node_count"] == 6  # 12,000/2,500
    assert data["limit_sources"]["ike_sas_per_node"].startswith("calibration cal.json (sha256:")
    assert data["limit_sources"]["esp_gbps_per_core"].startswith("default:")
    # a flag beats the plan file
    code, out, _err = run("plan", "--plan", plan_file, "--users", "500", "--json")
    assert json.loads(out)["input"]["users"] == 500

    plan_file.write_text("users: 500\nuser: 5\n")
    code, _out, err = run("plan", "--plan", plan_file)
    assert code == 2 and "plan file plan.yml: unknown key 'user'; valid keys: users," in err
    plan_file.write_text("users: 500\nusers: 600\n")
    assert "duplicate key 'users'" in run("plan", "--plan", plan_file)[2]
    calibration.write_text('{"ike_sas_per_node": "many"}')
    code, _out, err = run("plan", *MGMT, "--users", "500", "--calibration", calibration)
    assert code == 2 and "ike_sas_per_node is 'many'; give a whole number greater than 0" in err
    calibration.write_text('{"ike_sas": 1}')
    assert (
        "unknown key 'ike_sas'; valid keys: ike_sas_per_node"
        in run("plan", *MGMT, "--users", "5", "--calibration", calibration)[2]
    )
    assert "cannot read" in run("plan", "--plan", tmp_path / "none.yml")[2]


def test_from_grows_in_place_keeping_existing_hosts_byte_for_byte(run: Run, tmp_path: Path) -> None:
    out_dir = tmp_path / "inv"
    run("plan", *MGMT, "--users", "4000", "--ike-sas-per-node", "2000", "--out", out_dir)
    before = tree(out_dir)
    code, out, err = run("plan", "--from", out_dir, "--users", "8000")  # dry run
    assert code == 0 and "nothing written: add --out" in err and tree(out_dir) == before
    assert "--- /dev/null\n+++ b/" in out and "host_vars/conc5.yml" in out
    assert "\n-svpn_users: 4000\n" in out and "\n+svpn_users: 8000\n" in out

    code, out, _err = run("plan", "--from", out_dir, "--users", "8000", "--out", out_dir)
    after = tree(out_dir)
    assert code == 0
    for path, content in before.items():
        if path.startswith("host_vars/"):
            assert after[path] == content, path
    assert {"host_vars/conc5.yml", "host_vars/conc6.yml"} <= set(after)
    assert run("inventory", "check", out_dir)[0] == 0
    # growing again to the same size changes nothing
    code, out, _err = run("plan", "--from", out_dir, "--out", out_dir)
    assert code == 0 and "(none)" in out and tree(out_dir) == after


def test_inventory_check_lists_every_problem_and_exits_1(run: Run, tmp_path: Path) -> None:
    out_dir = tmp_path / "inv"
    run("plan", *MGMT, "--users", "10000", "--out", out_dir)
    conc2 = out_dir / "host_vars/conc2.yml"
    conc2.write_text(conc2.read_text().replace("198.19.32.0/19", "198.19.0.0/24").replace(".22", ".21"))
    code, _out, err = run("inventory", "check", out_dir)
    lines = err.strip().splitlines()
    assert code == 1
    assert any("is also used by conc1" in line for line in lines)
    assert any(
        "host conc1: concentrator_pool 198.19.0.0/19 overlaps conc2's 198.19.0.0/24" in line for line in lines
    )
    assert any("holds 254 addresses" in line for line in lines)
    assert lines[-1] == f"svpn: error: {out_dir}: {len(lines) - 1} problem(s) found (listed above)"
    assert run("inventory", "check", tmp_path / "nowhere")[0] == 2


def test_inventory_check_passes_the_lab_inventory(run: Run) -> None:
    """A hand-written farm (no svpn_plan, helper hosts in other groups, role defaults for tuning)."""
    code, out, err = run("inventory", "check", ROOT / "inventories/lab")
    assert (code, err) == (0, "")
    assert "OK (3 concentrators, 2 load balancers, 7 other hosts; smallest pool 4,094 addresses)" in out


def test_inventory_check_reports_a_broken_hand_written_farm(run: Run, tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    shutil.copytree(ROOT / "inventories/lab", lab)
    (lab / "host_vars/client9.yml").write_text("svpn_addresses:\n  public: 198.18.1.250\n")
    lb2 = lab / "host_vars/lb2.yml"
    lb2.write_text(lb2.read_text().replace("198.18.3.3", "198.18.3.2"))
    code, _out, err = run("inventory", "check", lab)
    assert code == 1 and "Traceback" not in err
    assert err.splitlines() == [
        f"{lab}: host_vars/client9.yml: no such host in hosts.yml (left over from an earlier plan?)",
        f"{lab}: host lb2: svpn_addresses.inside 198.18.3.2 is also used by lb1",
        f"svpn: error: {lab}: 2 problem(s) found (listed above)",
    ]


def test_a_hand_written_farm_cannot_be_grown(run: Run) -> None:
    code, _out, err = run("plan", "--from", ROOT / "inventories/lab", "--users", "500")
    assert code == 2 and "not written by `svpn plan`" in err and "Traceback" not in err


def test_ssh_managed_hosts_must_keep_ssh_open(run: Run, tmp_path: Path) -> None:
    """A plan without management networks: the warning at once, then the check refuses every farm host
    (they are reached over SSH: nothing sets ansible_connection), naming the field and the flag."""
    out_dir = tmp_path / "inv"
    code, _out, err = run("plan", "--users", "500", "--out", out_dir)
    assert code == 0 and "svpn_management_networks is empty" in err
    code, _out, err = run("inventory", "check", out_dir)
    assert code != 0
    refused = [line for line in err.splitlines() if "lock the controller out" in line]
    assert len(refused) == 4  # conc1, conc2, lb1, lb2
    assert all("svpn plan --management-networks" in line for line in refused)
    # a host reached another way (the lab's docker connection) keeps no SSH and is fine
    files = read_tree(out_dir)
    docker = edit(
        files, "group_vars/all.yml", lambda d: d.update(ansible_connection="community.docker.docker")
    )
    assert not [p for p in check_files(docker) if "lock the controller out" in p]
    # a role's own list wins over the farm-wide one, and a bad entry is named
    lb1 = edit(
        files, "host_vars/lb1.yml", lambda d: d.update(loadbalancer_management_networks=["198.18.73.5/32"])
    )
    assert not [p for p in check_files(lb1) if "host lb1" in p and "lock" in p]
    bad = edit(files, "group_vars/all.yml", lambda d: d.update(svpn_management_networks=["198.18.73.1/24"]))
    assert any(
        "svpn_management_networks: '198.18.73.1/24' is not an IPv4 network" in p for p in check_files(bad)
    )
    # with the flag, the warning is gone and the check passes
    code, _out, err = run("plan", *MGMT, "--users", "500", "--out", out_dir, "--force")
    assert code == 0 and "warning" not in err
    assert run("inventory", "check", out_dir)[0] == 0


def test_check_playbook_refuses_to_lock_the_controller_out(run: Run, tmp_path: Path) -> None:
    """What an operator runs: site.yml's first play (check.yml) on a planned farm reached over SSH. Its
    first play works on the controller alone (delegated to localhost); the live play that logs in to read
    $SSH_CONNECTION is skipped by its tag, so no farm host is contacted (molecule/ssh runs it for real)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    playbook = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        str(ROOT / "playbooks/check.yml"),
        "--skip-tags",
        "ssh_session",
    ]
    for flags, refused in (((), True), (MGMT, False)):
        out_dir = tmp_path / ("open" if flags else "closed")
        assert run("plan", *flags, "--users", "500", "--out", out_dir)[0] == 0
        done = subprocess.run(
            [*playbook, "-i", str(out_dir)], capture_output=True, text=True, env=env, timeout=120, check=False
        )
        assert (done.returncode != 0) == refused, done.stdout + done.stderr
        assert ("lock the controller out" in done.stdout) == refused
