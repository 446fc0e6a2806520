"""Run one shell command on a group of the farm's hosts through Ansible's own connections (docker in the
lab, SSH with become on real hosts, whatever the inventory says), all hosts at once, and get each host's
output back. I/O only: what the commands print is read by the pure modules beside this one.

It runs `ansible PATTERN -m raw` (no Python needed on the host, one round trip) in a child process, with
the stdout callback of this package (`ansible_plugins/svpn_results.py`) printing every host's result as one
JSON document. A host that cannot be reached comes back as such: the callers report the rest.
The command may use the host's inventory variables as Jinja (`{{ concentrator_attempt_log }}`): Ansible
templates it per host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from svpn.core.ansible_inventory import ANSIBLE_WAY, VaultOptions
from svpn.core.errors import SvpnError

PLUGINS = Path(__file__).resolve().parent / "ansible_plugins"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class HostResult:
    host: str
    rc: int | None
    stdout: str
    stderr: str
    unreachable: bool = False
    message: str = ""

    @property
    def ok(self) -> bool:
        return not self.unreachable and self.rc == 0

    @property
    def why(self) -> str:
        """One line saying why the host gave no answer (empty when it did)."""
        if self.ok:
            return ""
        text = self.message or self.stderr or self.stdout or f"exit code {self.rc}"
        reason = " ".join(text.split())[:300]
        return f"unreachable: {reason}" if self.unreachable else reason


def _ansible() -> str:
    beside = Path(sys.executable).with_name("ansible")  # the venv's, when svpn runs from one
    found = str(beside) if beside.exists() else shutil.which("ansible")
    if not found:
        raise SvpnError("ansible is not installed: run `make bootstrap`")
    return found


def run(
    inventory: Path,
    pattern: str,
    command: str,
    *,
    vault: VaultOptions = ANSIBLE_WAY,
    timeout: float = DEFAULT_TIMEOUT,
    extra_vars: Mapping[str, object] | None = None,
) -> dict[str, HostResult]:
    """Run *command* on the hosts of *inventory* that *pattern* selects; a result per host that Ansible
    tried (an empty mapping if the pattern selects none)."""
    argv = [_ansible(), "-i", os.fspath(inventory), pattern, "-m", "raw", "-a", command, "--forks", "50"]
    argv += [f"--vault-password-file={f}" for f in vault.password_files]
    argv += [f"--vault-id={v}" for v in vault.vault_ids]
    if extra_vars:
        argv += ["-e", json.dumps(dict(extra_vars))]
    env = {
        **os.environ,
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "svpn_results",
        "ANSIBLE_CALLBACK_PLUGINS": os.pathsep.join(
            p for p in (os.fspath(PLUGINS), os.environ.get("ANSIBLE_CALLBACK_PLUGINS", "")) if p
        ),
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
    }
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise SvpnError(f"ansible {pattern}: no answer within {timeout:.0f} s") from None
    document = _last_json(done.stdout)
    if document is None:
        if "matched no hosts" in done.stderr or "provided hosts list is empty" in done.stderr:
            return {}
        why = " ".join((done.stderr or done.stdout).split())[-400:]
        raise SvpnError(f"ansible {pattern} -i {inventory}: {why or f'exit code {done.returncode}'}")
    return {
        host: HostResult(
            host=host,
            rc=data.get("rc"),
            stdout=data.get("stdout", ""),
            stderr=data.get("stderr", ""),
            unreachable=bool(data.get("unreachable")),
            message=data.get("msg", ""),
        )
        for host, data in document["hosts"].items()
    }


def _last_json(stdout: str) -> dict[str, dict[str, dict[str, object]]] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith('{"hosts":'):
            return json.loads(line)
    return None
