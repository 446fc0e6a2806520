"""The drift check (playbooks/drift.yml, `svpn report`) compares exactly the files the roles write from
templates: each role's drift.yml lists (template, destination) pairs, and this test holds that list to the
role's own template tasks, so a template added, moved or renamed in a role cannot slip out of the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
DRIFT_ROLES = ["concentrator", "loadbalancer"]


def _tasks(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for task in items or []:
        found.append(task)
        for key in ("block", "rescue", "always"):
            found += _tasks(task.get(key, []))
    return found


def template_pairs(role: str) -> set[tuple[str, str]]:
    """(src, dest) of every ansible.builtin.template task of the role, drift.yml aside."""
    pairs = set()
    for path in sorted((ROLES / role / "tasks").glob("*.yml")):
        if path.name == "drift.yml":
            continue
        for task in _tasks(yaml.safe_load(path.read_text()) or []):
            args = task.get("ansible.builtin.template")
            if args:
                pairs.add((args["src"], args["dest"]))
    return pairs


def drift_pairs(role: str) -> set[tuple[str, str]]:
    tasks = _tasks(yaml.safe_load((ROLES / role / "tasks" / "drift.yml").read_text()))
    lists = [t["vars"][f"{role}_drift_files"] for t in tasks if f"{role}_drift_files" in t.get("vars", {})]
    assert len(lists) == 1, f"roles/{role}/tasks/drift.yml: one {role}_drift_files list expected"
    return {(item["src"], item["dest"]) for item in lists[0]}


@pytest.mark.parametrize("role", DRIFT_ROLES)
def test_the_drift_check_compares_every_file_the_role_templates(role: str) -> None:
    assert drift_pairs(role) == template_pairs(role)


def test_the_check_is_not_empty() -> None:  # the parser finds what is there
    assert ("swanctl.conf.j2", "/etc/swanctl/conf.d/svpn.conf") in template_pairs("concentrator")
    assert ("keepalived.conf.j2", "/etc/keepalived/keepalived.conf") in template_pairs("loadbalancer")
