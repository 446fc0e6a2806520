"""The shipped inventories/example-* are exactly what `svpn plan` writes for their inputs.

If a change to the planner changes them on purpose, regenerate them with the commands in EXAMPLES
(from the repository root, with --force) and review the diff like any other change.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from svpn.inventory.grow import existing_farm
from svpn.inventory.render import render_tree
from svpn.inventory.tree import check_files, load_files, read_tree, tree_diff
from svpn.planning.inputs import resolve_input
from svpn.planning.model import Plan
from svpn.planning.plan import make_plan

ROOT = Path(__file__).resolve().parents[2]

# inventory directory -> the `svpn plan` arguments that wrote it (plus --out inventories/NAME)
EXAMPLES = {
    "example-500": ["--users", "500", "--dns", "198.18.72.53", "--management-networks", "198.18.73.0/24"],
    "example-10000": ["--users", "10000", "--dns", "198.18.72.53", "--management-networks", "198.18.73.0/24"],
    "sample": ["--users", "2000", "--dns", "198.18.72.53", "--management-networks", "198.18.73.0/24"],
}
# files of an inventory that are the operator's, not the planner's (tests/unit/test_sample.py checks them)
OPERATOR_FILES = {"sample": {"operator.yml"}}
FLAG_KEYS = {"--users": "users", "--dns": "dns", "--management-networks": "management_networks"}


def tree(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def plan_for(argv: list[str]) -> Plan:
    flags = {FLAG_KEYS[flag]: value for flag, value in zip(argv[::2], argv[1::2], strict=True)}
    flags["users"] = int(flags["users"])
    return make_plan(resolve_input([(flags, "command line")]))


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_regenerating_the_example_is_byte_identical(name: str) -> None:
    shipped = {
        p: b for p, b in tree(ROOT / "inventories" / name).items() if p not in OPERATOR_FILES.get(name, ())
    }
    rendered = {path: text.encode() for path, text in render_tree(plan_for(EXAMPLES[name])).items()}
    assert sorted(shipped) == sorted(rendered), "files added or missing: regenerate the example"
    for path in rendered:
        assert shipped[path] == rendered[path], f"{name}/{path} differs from what `svpn plan` writes now"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_example_passes_the_check_and_grows_to_itself(name: str) -> None:
    files = read_tree(ROOT / "inventories" / name)
    assert check_files(files) == []
    layer, existing, kept = existing_farm(load_files(files), name)
    again = make_plan(resolve_input([(layer, "inventory")]), existing)
    assert tree_diff(files, render_tree(again, kept), name) == ""


def test_the_examples_figures() -> None:
    small, large = plan_for(EXAMPLES["example-500"]), plan_for(EXAMPLES["example-10000"])
    assert (small.node_count, small.sizing.binding, small.pools.prefix) == (2, "sessions", 22)
    assert (large.node_count, large.sizing.binding, large.pools.prefix) == (4, "sessions", 19)
    hosts = yaml.safe_load((ROOT / "inventories/example-10000/hosts.yml").read_text())
    assert list(hosts["all"]["children"]["concentrators"]["hosts"]) == ["conc1", "conc2", "conc3", "conc4"]


def test_the_cli_writes_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from svpn.cli.plan import plan

    out = tmp_path / "example-500"
    result = CliRunner().invoke(plan, [*EXAMPLES["example-500"], "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert tree(out) == tree(ROOT / "inventories" / "example-500")
