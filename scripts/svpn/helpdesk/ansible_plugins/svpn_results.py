"""An Ansible stdout callback for `svpn.helpdesk.remote`: one JSON document on stdout, each host's result of
the ad-hoc task (rc, stdout, stderr), or why it was unreachable or failed before running.

Loaded by name (ANSIBLE_STDOUT_CALLBACK=svpn_results) from this directory (ANSIBLE_CALLBACK_PLUGINS).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: svpn_results
    type: stdout
    short_description: every host's ad-hoc result as one JSON document (for svpn.helpdesk.remote)
    description:
      - Prints one JSON object once, when the run ends - per host its rc, stdout, stderr, unreachable, msg.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "svpn_results"
    # svpn.helpdesk.remote.run_here runs Ansible in its own process and reads the results from here instead
    print_results = True
    last_results: dict[str, dict[str, Any]] = {}  # noqa: RUF012 - the in-process reader's hand-over

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hosts: dict[str, dict[str, Any]] = {}

    def _keep(self, result: Any, unreachable: bool = False) -> None:
        data = result._result
        self._hosts[result._host.get_name()] = type(self).last_results[result._host.get_name()] = {
            "rc": data.get("rc"),
            "stdout": str(data.get("stdout", "")),
            "stderr": str(data.get("stderr", "")),
            "unreachable": unreachable,
            "msg": str(data.get("msg", "")),
        }

    def v2_runner_on_ok(self, result: Any) -> None:
        self._keep(result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._keep(result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._keep(result, unreachable=True)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        if self.print_results:
            sys.stdout.write(json.dumps({"hosts": self._hosts}) + "\n")
            sys.stdout.flush()
