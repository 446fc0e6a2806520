"""After (and before) a load test: sweep away whatever one left, and check that nothing is left.

The sweep runs before every load test and after its own undo stack, for what a crashed or interrupted run
left: generator containers, the LBs' routes to the generators, the load-test items in the concentrators'
charon. The check after teardown reports anything still there under "cleanup". Imports svpn.lab (the
lab's hosts) and svpn.core.
"""

from __future__ import annotations

import contextlib
import time
from ipaddress import IPv4Network
from typing import Any

from cryptography import x509
from vici.exception import CommandException, SessionException

from svpn.core.errors import SvpnError
from svpn.lab.topo import Lab, LabHost
from svpn.loadtest.containers import docker, vici_session
from svpn.loadtest.generators import GeneratorSpec
from svpn.loadtest.lbs import lb_exec
from svpn.loadtest.names import (
    AUTHORITY_NAME,
    CONN_NAME,
    GENERATOR_CONTAINER_PREFIX,
    OVERFLOW_POOL_PREFIX,
    SOURCE_RANGE,
)
from svpn.loadtest.nodeconf import cert_leftovers, conn_leftovers
from svpn.loadtest.nodes import RunNode, loadtest_sas, running, terminate_loadtest_sas
from svpn.loadtest.undo import Log


def sweep(lab: Lab, log: Log) -> list[str]:
    """Remove whatever a load test may have left (a crashed run): generators, LB routes, node items.

    Runs before every load test and after its own teardown; returns what it had to remove.
    """
    removed = _sweep_generators()
    for lb in lab.group("loadbalancers"):
        removed += _sweep_lb_routes(lb)
    for host in lab.group("concentrators"):
        try:
            _sweep_node(host, removed)
        except (SvpnError, OSError, SessionException, CommandException) as err:
            removed.append(f"{host.name}: could not check ({err})")
    for item in removed:
        log(f"removed a leftover: {item}")
    return removed


def _sweep_generators() -> list[str]:
    removed = []
    names = docker("ps", "-a", "--format", "{{.Names}}", check=False).stdout.split()
    for name in names:
        if name.startswith(GENERATOR_CONTAINER_PREFIX):
            docker("rm", "--force", name, check=False)
            removed.append(f"container {name}")
    return removed


def _sweep_lb_routes(lb: LabHost) -> list[str]:
    removed: list[str] = []
    if docker("container", "inspect", lb.container, check=False).returncode != 0:
        return removed
    for line in lb_exec(lb, "ip", "-4", "route", "show").stdout.splitlines():
        dest = line.split(" ", 1)[0]
        with contextlib.suppress(ValueError):
            if IPv4Network(dest).subnet_of(SOURCE_RANGE):
                lb_exec(lb, "ip", "route", "del", dest)
                removed.append(f"{lb.name}: route {dest}")
    return removed


def _sweep_node(host: LabHost, removed: list[str]) -> None:
    """Remove the load-test items in one node's charon (SAs, connection, overflow pools, authority, cached
    certificates), each added to *removed* as it goes."""
    if not running(host.container):
        return
    with vici_session(host.container) as session:
        busy = loadtest_sas(host.container, block=False) != (0, 0)
        if conn_leftovers(session.list_conns()) or busy:
            terminate_loadtest_sas(session)
            deadline = time.monotonic() + 15
            while loadtest_sas(host.container, block=False) != (0, 0) and time.monotonic() < deadline:
                time.sleep(1)
        if conn_leftovers(session.list_conns()):
            session.unload_conn({"name": CONN_NAME})
            removed.append(f"{host.name}: connection {CONN_NAME}")
        for pool in session.get_pools():
            if pool.startswith(OVERFLOW_POOL_PREFIX):
                with contextlib.suppress(CommandException):
                    session.unload_pool({"name": pool})
                    removed.append(f"{host.name}: pool {pool}")
        if any(AUTHORITY_NAME in entry for entry in session.list_authorities()):
            session.unload_authority({"name": AUTHORITY_NAME})
            removed.append(f"{host.name}: authority {AUTHORITY_NAME}")
        session.flush_certs({"type": "x509"})


def node_leftovers(container: str) -> dict[str, list[str]]:
    """What of the load test a node's charon still knows: connections, authorities, pools, certs."""
    with vici_session(container) as session:
        conns = conn_leftovers(session.list_conns())
        authorities = sorted(
            name for entry in session.list_authorities() for name in entry if name == AUTHORITY_NAME
        )
        pools = sorted(name for name in session.get_pools() if name.startswith(OVERFLOW_POOL_PREFIX))
        subjects = []
        for cert in session.list_certs({"type": "X509"}):
            with contextlib.suppress(ValueError):
                subjects.append(x509.load_der_x509_certificate(bytes(cert["data"])).subject.rfc4514_string())
        count = len(conn_leftovers(session.list_sas({"noblock": "yes"})))
        sas = [f"{count} IKE SAs of {CONN_NAME}"] if count else []
    certs = cert_leftovers(subjects)
    return {
        k: v
        for k, v in {
            "conns": conns,
            "authorities": authorities,
            "pools": pools,
            "certs": certs,
            "sas": sas,
        }.items()
        if v
    }


def verify_clean(nodes: dict[str, RunNode], lbs: list[LabHost], specs: list[GeneratorSpec]) -> dict[str, Any]:
    """After teardown: nothing of the load test on any node, LB or in docker."""
    found: dict[str, Any] = {}
    for node in nodes.values():
        try:
            left = node_leftovers(node.container)
        except SvpnError as err:
            left = {"error": [str(err)]}
        if left:
            found[node.name] = left
    for lb in lbs:
        routes = lb_exec(lb, "ip", "-4", "route", "show").stdout
        stale = [str(s.source_block) for s in specs if str(s.source_block) in routes]
        if stale:
            found[lb.name] = {"routes": stale}
    containers = [
        s.container for s in specs if docker("container", "inspect", s.container, check=False).returncode == 0
    ]
    if containers:
        found["docker"] = {"containers": containers}
    return {"clean": not found, "left": found}
