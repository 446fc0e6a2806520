"""The drift play (``playbooks/drift.yml``: each config file's SHA-1 on the host against the role's template
rendered from the inventory) run through Ansible, and its JSON output read into
:class:`~svpn.report.drift.FileCheck` s. Reading is pure (:func:`file_checks`); :func:`run_drift_play` runs
ansible-playbook in a child process.
"""

from __future__ import annotations

import base64
import difflib
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from svpn.core.ansible_inventory import ANSIBLE_WAY, VaultOptions
from svpn.core.errors import SvpnError
from svpn.report.drift import FileCheck

DIFF_LINES = 4  # the differing lines a finding quotes
PLAY_SECONDS = 120.0


def changed_lines(found: str, expected: str) -> str:
    """The first lines that differ: "-" as the host has them, "+" as the role would write them."""
    lines = [
        f"{line[0]} {' '.join(line[1:].split())}"
        for line in difflib.unified_diff(found.splitlines(), expected.splitlines(), lineterm="", n=0)
        if not line.startswith(("---", "+++", "@@"))
    ]
    more = f" (+{len(lines) - DIFF_LINES} more lines)" if len(lines) > DIFF_LINES else ""
    return "; ".join(lines[:DIFF_LINES]) + more


def _why(result: Mapping[str, Any]) -> str:
    return " ".join(str(result.get("msg") or result.get("stderr") or "failed").split())[:200]


def file_checks(document: Mapping[str, Any]) -> tuple[list[FileCheck], dict[str, str]]:
    """Each compared file per host from ansible.posix.json's document of the drift play, and the hosts it
    could not compare (host: why: unreachable, or a task failed)."""
    compared: dict[tuple[str, str], tuple[str, str]] = {}  # (host, path) -> (expected, found) SHA-1
    contents: dict[tuple[str, str], str] = {}  # the host's file, as slurped
    rendered: dict[tuple[str, str], str] = {}  # what the role would write
    failed: dict[str, str] = {}
    for play in document.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                if result.get("unreachable") or (result.get("failed") and "results" not in result):
                    failed.setdefault(host, _why(result))
                for one in result.get("results", []):
                    if one.get("failed"):
                        failed.setdefault(host, _why(one))
                    msg = one.get("msg")
                    if isinstance(msg, Mapping) and "svpn_drift" in msg:
                        key = (host, str(msg["svpn_drift"]))
                        compared[key] = (str(msg.get("expected", "")), str(msg.get("found") or ""))
                    elif isinstance(msg, Mapping) and "svpn_drift_rendered" in msg:
                        rendered[(host, str(msg["svpn_drift_rendered"]))] = str(msg.get("content", ""))
                    elif "content" in one and "source" in one:
                        text = base64.b64decode(str(one["content"])).decode("utf-8", "replace")
                        contents[(host, str(one["source"]))] = text
    checks = []
    for (host, path), (expected, found) in compared.items():
        if not found:
            checks.append(FileCheck(host, path, "missing", ""))
        elif found == expected:
            checks.append(FileCheck(host, path, "same", "", found))
        else:
            key = (host, path)
            detail = (
                changed_lines(contents[key], rendered[key]) if key in contents and key in rendered else ""
            )
            checks.append(FileCheck(host, path, "differs", detail, found))
    return checks, failed


def repo_playbook() -> Path:
    from svpn.core.paths import repo_root

    return repo_root() / "playbooks" / "drift.yml"


def run_drift_play(
    inventory: Path, vault: VaultOptions = ANSIBLE_WAY, timeout: float = PLAY_SECONDS
) -> tuple[list[FileCheck], dict[str, str]]:
    """Run the drift play (read-only) on every concentrator and LB; SvpnError when it cannot run at all."""
    binary = Path(sys.executable).with_name("ansible-playbook")
    argv = [
        os.fspath(binary) if binary.exists() else "ansible-playbook",
        "-i",
        os.fspath(inventory),
        os.fspath(repo_playbook()),
        "--forks",
        "50",
    ]
    argv += vault.argv()
    root = repo_playbook().parent.parent
    env = {
        "ANSIBLE_ROLES_PATH": os.fspath(root / "roles"),
        "ANSIBLE_FILTER_PLUGINS": os.fspath(root / "plugins" / "filter"),
        **os.environ,
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
    }
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise SvpnError(f"the drift play gave no answer within {timeout:.0f} s") from None
    try:
        document = json.loads(done.stdout[done.stdout.index("{") :])
    except ValueError:
        why = " ".join((done.stderr or done.stdout).split())[-300:]
        raise SvpnError(f"the drift play failed: {why or f'exit code {done.returncode}'}") from None
    return file_checks(document)
