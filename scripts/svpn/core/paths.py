"""Where the repository is: the roles, playbooks and inventories the CLI runs and reads."""

from __future__ import annotations

from pathlib import Path


def repo_root() -> Path:
    """The repository root: where ``ansible.cfg`` lives (falls back to the cwd)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "ansible.cfg").exists():
            return parent
    return Path.cwd()
