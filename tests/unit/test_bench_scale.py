"""Pure parts of the scale benchmark: the recap parser and the grown inventory."""

from __future__ import annotations

from pathlib import Path

import yaml

from svpn.lab.bench_scale import _next_node, grown_inventory
from svpn.lab.recap import changed_hosts, parse_recap
from svpn.lab.topo import load_lab

ROOT = Path(__file__).resolve().parents[2]

RECAP = """
PLAY RECAP *********************************************************************
conc1            : ok=17   changed=0    unreachable=0    failed=0    skipped=1    rescued=0    ignored=0
conc3            : ok=22   changed=17   unreachable=0    failed=0    skipped=1    rescued=0    ignored=0
lb1            : ok=19   changed=3    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
"""


def test_recap_is_read_per_host() -> None:
    recap = parse_recap(RECAP)
    assert recap["conc3"]["changed"] == 17
    assert recap["conc1"] == {
        "ok": 17, "changed": 0, "unreachable": 0, "failed": 0, "skipped": 1, "rescued": 0, "ignored": 0,
    }  # fmt: skip
    assert changed_hosts(recap, ["conc1", "lb1", "nohost"]) == ["lb1"]


def test_the_next_node_follows_the_last_one() -> None:
    node = _next_node(load_lab(ROOT / "inventories" / "lab"))
    assert node == {
        "name": "conc4",
        "addresses": {"inside": "198.18.3.14", "internal": "198.18.2.14"},
        "pool": "198.19.48.0/20",
    }


def test_grown_inventory_adds_only_the_new_node(tmp_path: Path) -> None:
    source = ROOT / "inventories" / "lab"
    node = _next_node(load_lab(source))
    grown = grown_inventory(source, tmp_path / "grown", node)
    topo = load_lab(grown)
    assert [h.name for h in topo.group("concentrators")] == ["conc1", "conc2", "conc3", "conc4"]
    assert (
        yaml.safe_load((grown / "host_vars" / "conc4.yml").read_text())["concentrator_pool"] == node["pool"]
    )
    for name in ("conc1", "lb1", "client1"):
        assert (grown / "host_vars" / f"{name}.yml").read_bytes() == (
            source / "host_vars" / f"{name}.yml"
        ).read_bytes()
