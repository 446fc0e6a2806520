"""What the default scenario's tests share: running one of the project's playbooks on the scenario."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])

Playbook = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def playbook() -> Playbook:
    """``playbook(NAME, *ARGS)``: playbooks/NAME on the scenario's inventory with molecule's ansible.cfg,
    as an operator would run it; fails the test (with the output's tail) unless it succeeds."""

    def run(name: str, *extra: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["ansible-playbook", "-i", str(EPHEMERAL / "inventory"), str(ROOT / "playbooks" / name), *extra],
            env={**os.environ, "ANSIBLE_CONFIG": str(EPHEMERAL / "ansible.cfg")},
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        return done

    return run
