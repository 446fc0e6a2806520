"""Every `svpn_*` filter the roles, playbooks and scenarios use exists in plugins/filter/svpn_farm.py.

Ansible reports a missing filter only when the task runs, on real hosts, minutes into a deploy; this
finds it from the sources.
"""

from __future__ import annotations

import re
from pathlib import Path

from svpn_testing.plugins import farm_filters

ROOT = Path(__file__).resolve().parents[2]
USED = re.compile(r"\|\s*(svpn_[a-z0-9_]+)")
PLACES = ("roles", "playbooks", "molecule", "inventories")


def defined_filters() -> set[str]:
    return set(farm_filters())


def used_filters() -> dict[str, list[str]]:
    used: dict[str, list[str]] = {}
    for place in PLACES:
        for path in sorted((ROOT / place).rglob("*")):
            if path.suffix not in (".yml", ".yaml", ".j2") or not path.is_file():
                continue
            for name in USED.findall(path.read_text()):
                used.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return used


def test_the_sources_use_filters_and_the_scan_finds_them() -> None:
    used = used_filters()
    assert "svpn_bucket_map" in used and "svpn_farm_problems" in used


def test_every_filter_used_is_defined() -> None:
    defined = defined_filters()
    missing = {name: where for name, where in used_filters().items() if name not in defined}
    assert not missing, f"filters used but not in plugins/filter/svpn_farm.py: {missing}"
