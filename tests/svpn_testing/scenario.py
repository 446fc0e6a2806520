"""What the molecule scenarios ask of their hosts: tunnels, placement, figures (one place for all of them).

The checks themselves read swanctl's output through :mod:`svpn.farm.sas` (unit-tested); this module only
runs the commands on the scenario's hosts (testinfra over the molecule inventory) and waits.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from svpn.farm.sas import client_tunnel, remote_vips
from svpn.lab.status import app_saw


class ScenarioHosts:
    """The hosts of one molecule scenario, its app's address and its figures file."""

    def __init__(self, inventory: str, report: Path, app: str) -> None:
        self.inventory = inventory
        self.report = report
        self.app = app

    def host(self, name: str) -> Any:
        import testinfra  # a test dependency: only the scenarios' tests import this module

        return testinfra.get_host(f"ansible://{name}?ansible_inventory={self.inventory}")

    def record(self, key: str, value: Any) -> None:
        """Add one measured figure to the report (JSON) and print it for the CI log."""
        self.report.parent.mkdir(parents=True, exist_ok=True)
        data = json.loads(self.report.read_text()) if self.report.exists() else {}
        data[key] = value
        self.report.write_text(json.dumps(data, indent=2) + "\n")
        print(f"\nFIGURE {key}: {value}")

    def client_sa(self, name: str) -> tuple[str, str]:
        """(virtual IP, IKE SA unique id) of the client's tunnel, or ("", "")."""
        return client_tunnel(self.host(name).run("swanctl --list-sas --ike svpn").stdout)

    def reaches_app(self, client: str, vip: str) -> bool:
        """The app answers the client, and saw the client's virtual IP (so: through the tunnel)."""
        return app_saw(self.host(client).run(f"curl --silent --max-time 3 http://{self.app}/").stdout, vip)

    def served_on_new_connection(self, client: str, server_cn: str) -> list[tuple[str, int]]:
        """Connect the client anew, its cache of received certificates emptied first: (issuer, serial) of
        the server certificate the node served it, as the client's own charon lists it."""
        host = self.host(client)
        host.check_output("swanctl --flush-certs")
        host.run("swanctl --terminate --ike svpn --timeout 10")
        out = host.run("swanctl --initiate --child svpn --timeout 20").stdout
        assert "initiate completed successfully" in out, out[-2000:]
        return listed_certs(host.check_output(f"swanctl --list-certs --subject CN={server_cn}"))

    def node_of_vips(self, nodes: Iterable[str]) -> dict[str, str]:
        """virtual IP → the concentrator holding its IKE SA, as each node's own charon says."""
        where = {}
        for node in nodes:
            for vip in remote_vips(self.host(node).run("swanctl --list-sas --ike svpn").stdout):
                where[vip] = node
        return where

    def wait_all_up(
        self, clients: list[str], nodes: list[str], timeout: float, avoid: str | None = None
    ) -> dict[str, str]:
        """Wait until every client has a tunnel (on none of *avoid*) and reaches the app through it;
        client → node."""
        deadline = time.monotonic() + timeout
        while True:
            vips = {c: self.client_sa(c)[0] for c in clients}
            where = self.node_of_vips(nodes) if all(vips.values()) else {}
            ok = all(vips.values()) and all(
                where.get(vip) and where[vip] != avoid and self.reaches_app(c, vip) for c, vip in vips.items()
            )
            if ok:
                return {c: where[vip] for c, vip in vips.items()}
            if time.monotonic() > deadline:
                raise AssertionError(f"not all of {clients} up within {timeout:.0f} s: {vips}, nodes {where}")
            time.sleep(1)


def wait_for_tunnel(client: Any, timeout: float, pause: float = 1.0) -> str:
    """The client's virtual IP once its IKE and CHILD SA are up (a testinfra host; a bounded wait)."""
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        out = client.check_output("swanctl --list-sas --ike svpn")
        vip, _ = client_tunnel(out)
        if vip:
            return vip
        time.sleep(pause)
    raise AssertionError(f"no tunnel within {timeout:.0f} s; swanctl --list-sas said:\n{out}")


def listed_certs(list_certs: str) -> list[tuple[str, int]]:
    """(issuer, serial) of each certificate in `swanctl --list-certs` output (charon prints the serial as
    colon-separated hex, with a leading zero byte where DER has one)."""
    issuers = re.findall(r'^\s+issuer:\s+"(.*)"$', list_certs, re.M)
    serials = [int(s.replace(":", ""), 16) for s in re.findall(r"^\s+serial:\s+(\S+)$", list_certs, re.M)]
    return list(zip(issuers, serials, strict=True))


def run_loadtest(project: Path, lab_view: Path, report: Path, *args: str, timeout: float = 600) -> dict:
    """`svpn loadtest --inventory LAB_VIEW --json REPORT ARGS...` as an operator runs it; its report, with
    the command's exit code added as ``exit_code``."""
    import subprocess
    import sys

    report.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "svpn",
        "loadtest",
        "--inventory",
        str(lab_view),
        "--json",
        str(report),
        *args,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=project)
    print(done.stdout[-3000:], done.stderr[-3000:])
    assert report.exists(), done.stderr[-3000:]
    data = json.loads(report.read_text())
    data["exit_code"] = done.returncode
    return data
