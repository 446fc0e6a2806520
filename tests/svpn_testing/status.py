"""`svpn status` as a scenario's test runs it: the CLI in a child process, as an operator or a monitoring
system calls it, against the scenario's inventory (molecule's, with its PKI), with its exit status and its
JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class StatusRun:
    exit_code: int  # 0 all is well, 1 problems, 2 the status could not be taken
    status: dict[str, Any]  # `svpn status --json`; {} when it printed none
    stderr: str
    seconds: float  # wall time of the whole command

    def node(self, name: str) -> dict[str, Any]:
        return next(n for n in self.status["nodes"] if n["name"] == name)


def farm_status(inventory: str | Path, pki: str | Path | None = None, days: int | None = None) -> StatusRun:
    """Run `svpn status --json` on *inventory* (a molecule scenario's: ``$MOLECULE_EPHEMERAL_DIRECTORY/
    inventory``) with the interpreter running the test, so the package under test answers."""
    argv = [sys.executable, "-m", "svpn", "status", "--json", "--inventory", os.fspath(inventory)]
    if pki is not None:
        argv += ["--pki", os.fspath(pki)]
    if days is not None:
        argv += ["--days", str(days)]
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    seconds = time.monotonic() - started
    status = json.loads(done.stdout) if done.stdout.strip() else {}
    return StatusRun(done.returncode, status, done.stderr, seconds)
