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

import functools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    argv += vault.argv()
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
    return {host: _result(host, data) for host, data in document["hosts"].items()}


def run_here(
    inventory: Path,
    pattern: str,
    command: str,
    *,
    vault: VaultOptions = ANSIBLE_WAY,
    extra_vars: Mapping[str, object] | None = None,
    prepared: tuple[Any, Any, Any] | None = None,
) -> dict[str, HostResult]:
    """:func:`run`, with Ansible in this process (its executor, as `ansible` uses it): one Python and one
    import of Ansible less, about 0.7 s on a busy 2-core controller. For a one-shot command only (the CLI):
    Ansible's executor sets process-wide state (signal handlers, its context), so a long-running server
    keeps :func:`run`'s child process. *prepared*: the inventory as svpn.core.ansible_inventory read it
    (its ``ansible``), not read again."""
    os.environ.setdefault("ANSIBLE_DEPRECATION_WARNINGS", "0")
    from ansible import constants, context
    from ansible.errors import AnsibleError
    from ansible.executor.task_queue_manager import TaskQueueManager
    from ansible.inventory.manager import InventoryManager
    from ansible.module_utils.common.collections import ImmutableDict
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook.play import Play
    from ansible.plugins.loader import callback_loader
    from ansible.template import trust_as_template  # the command is ours: Jinja in it is rendered
    from ansible.vars.manager import VariableManager

    from svpn.core.ansible_inventory import vault_secrets

    plugins_loaded()
    # what `ansible` takes from its options' defaults (ansible.cfg and the environment): the inventory's
    # ansible_become then becomes root the configured way (sudo), as in the playbooks
    context.CLIARGS = ImmutableDict(
        connection="smart", forks=50, become=constants.DEFAULT_BECOME,
        become_method=constants.DEFAULT_BECOME_METHOD, become_user=constants.DEFAULT_BECOME_USER,
        check=False, diff=False, verbosity=0, module_path=[], extra_vars=[json.dumps(dict(extra_vars or {}))],
    )  # fmt: skip
    if prepared is None:
        loader = DataLoader()
        loader.set_vault_secrets(vault_secrets(loader, vault))
    collector = callback_loader.get("svpn_results", class_only=True)
    collector.print_results = False
    collector.last_results.clear()
    try:
        if prepared is None:
            hosts = InventoryManager(loader=loader, sources=[os.fspath(Path(inventory).resolve())])
            variables = VariableManager(loader=loader, inventory=hosts)
        else:
            loader, hosts, variables = prepared
        if not hosts.list_hosts(pattern):
            return {}
        play = Play().load(
            {"name": "svpn", "hosts": pattern, "gather_facts": "no",
             "tasks": [{"action": "raw", "args": {"_raw_params": trust_as_template(command)}}]},
            variable_manager=variables, loader=loader,
        )  # fmt: skip
        tqm = TaskQueueManager(
            inventory=hosts, variable_manager=variables, loader=loader, passwords={},
            stdout_callback_name="svpn_results", forks=50,
        )  # fmt: skip
        try:
            tqm.run(play)
        finally:
            tqm.cleanup()
    except AnsibleError as err:
        raise SvpnError(f"ansible {pattern} -i {inventory}: {' '.join(str(err).split())[:400]}") from None
    return {host: _result(host, data) for host, data in collector.last_results.items()}


@functools.cache
def plugins_loaded() -> None:
    """Ansible's plugin loader set up once per process (lookups and connections are plugins), with this
    package's result callback."""
    from ansible.plugins.loader import callback_loader, init_plugin_loader

    init_plugin_loader()
    callback_loader.add_directory(os.fspath(PLUGINS))


def _result(host: str, data: Mapping[str, object]) -> HostResult:
    rc = data.get("rc")
    return HostResult(
        host=host,
        rc=rc if isinstance(rc, int) else None,
        stdout=str(data.get("stdout", "")),
        stderr=str(data.get("stderr", "")),
        unreachable=bool(data.get("unreachable")),
        message=str(data.get("msg", "")),
    )


def _last_json(stdout: str) -> dict[str, dict[str, dict[str, object]]] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith('{"hosts":'):
            return json.loads(line)
    return None
