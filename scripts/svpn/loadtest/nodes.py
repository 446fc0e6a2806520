"""The concentrators during a load test: their temporary credentials in and out of charon, their counts.

For the run each node's charon gets, in memory only, the load-test authority, an overflow pool where its
own is too small, and the temporary connection (svpn.loadtest.nodeconf composes them); each load pushes
its unload onto the undo stack. Also: counting a node's load-test users, restarting its strongSwan.
Imports svpn.lab (the lab's hosts) and svpn.core.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

import vici
from vici.exception import CommandException, SessionException

from svpn.core.errors import SvpnError
from svpn.lab.topo import LabHost
from svpn.loadtest.containers import (
    container_path,
    docker,
    process_pid,
    vici_session,
    vici_text,
    wait_for,
)
from svpn.loadtest.generators import LoadtestCA
from svpn.loadtest.lbs import wait_lbs_see_all_up
from svpn.loadtest.names import AUTHORITY_NAME, CONN_NAME, OVERFLOW_POOL_PREFIX
from svpn.loadtest.nodeconf import NodePool, conn_leftovers, loadtest_conn, parse_swanctl
from svpn.loadtest.undo import Log, Undo

NODE_CONF = "/etc/swanctl/conf.d/svpn.conf"


@dataclass
class RunNode:
    """A concentrator in a run: its host, its own pool, its overflow pool if any, charon's host PID."""

    host: LabHost
    pool: NodePool
    overflow: IPv4Network | None
    pid: int = 0

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def container(self) -> str:
        return self.host.container

    @property
    def pool_names(self) -> list[str]:
        return [self.pool.name] + ([self.overflow_name] if self.overflow else [])

    @property
    def overflow_name(self) -> str:
        return f"{OVERFLOW_POOL_PREFIX}{self.name}"


def read_node_conf(host: LabHost) -> dict[str, Any]:
    """The node's swanctl.conf (its svpn connection and pools), parsed."""
    return parse_swanctl(container_path(host.container, NODE_CONF).read_text())


def running(container: str) -> bool:
    """Whether the node's charon runs (a storm or a restart may have stopped it)."""
    return process_pid(container, "charon-systemd") != 0


def node_counts(container: str, pool_names: list[str]) -> int:
    """Online leases in the given pools of a node (cheap: no SA listing)."""
    try:
        with vici_session(container, timeout=5) as session:
            pools = session.get_pools()
    except (SvpnError, OSError, SessionException):
        return 0
    return sum(int(vici_text(pools[name]["online"])) for name in pool_names if name in pools)


def _complete(sa: dict[str, Any]) -> bool:
    """A user that is up: IKE SA established, a CHILD SA installed, a virtual IP."""
    children = sa.get("child-sas", {}) or {}
    installed = any(vici_text(c.get("state")) == "INSTALLED" for c in children.values())
    return vici_text(sa.get("state")) == "ESTABLISHED" and installed and bool(sa.get("remote-vips"))


def loadtest_sas(container: str, block: bool = True) -> tuple[int, int]:
    """(load-test IKE SAs with an installed CHILD SA and a virtual IP, other load-test IKE SAs).

    *block*: wait for SAs that are busy (in an exchange) rather than skip them, for an exact count.
    """
    good = other = 0
    query = {"ike": CONN_NAME} if block else {"ike": CONN_NAME, "noblock": "yes"}
    try:
        with vici_session(container, timeout=60) as session:
            for entry in session.list_sas(query):
                for sa in entry.values():
                    if _complete(sa):
                        good += 1
                    else:
                        other += 1
    except SvpnError:
        pass
    return good, other


def loadtest_users(container: str) -> set[str]:
    """The identities of the load-test users this node carries (IKE SA established, CHILD SA installed,
    virtual IP), without waiting for busy SAs. A user whose old SA on a drained node is not gone yet and
    who is up on another node is one user, not two, once the sets are joined."""
    users = set()
    try:
        with vici_session(container, timeout=30) as session:
            for entry in session.list_sas({"ike": CONN_NAME, "noblock": "yes"}):
                for sa in entry.values():
                    if _complete(sa):
                        users.add(vici_text(sa.get("remote-id")))
    except (SvpnError, OSError, SessionException):
        pass
    return users


def load_node(node: RunNode, conf: dict[str, Any], ca: LoadtestCA, undo: Undo, log: Log) -> None:
    """Trust the load-test CA, add the overflow pool if any, load the temporary connection."""
    container = node.container
    with vici_session(container) as session:
        session.load_authority({AUTHORITY_NAME: {"cacert": ca.cert_pem}})
        undo.push(f"{node.name}: unload the load-test authority", lambda: unload_authority(container))
        if node.overflow:
            session.load_pool({node.overflow_name: {"addrs": str(node.overflow)}})
            undo.push(
                f"{node.name}: unload pool {node.overflow_name}",
                lambda: unload_pool(container, node.overflow_name),
            )
        session.load_conn(loadtest_conn(conf, ca.dn, node.pool_names))
        undo.push(f"{node.name}: unload connection {CONN_NAME}", lambda: unload_conn(container))
    log(
        f"{node.name}: loaded connection {CONN_NAME} (pools {', '.join(node.pool_names)})"
        + (f", overflow {node.overflow}" if node.overflow else "")
    )


def terminate_loadtest_sas(session: vici.Session) -> None:
    # force: delete without waiting for the (possibly gone) peer; timeout -1: do not wait here either
    with contextlib.suppress(CommandException):
        for _ in session.terminate({"ike": CONN_NAME, "force": "yes", "timeout": "-1"}):
            pass


def unload_conn(container: str) -> None:
    """Remove the temporary connection, its SAs first (a node whose charon restarted has none)."""
    if not running(container):
        return
    with vici_session(container, timeout=120) as session:
        if not conn_leftovers(session.list_conns()):
            return  # gone with a charon restart
        # SAs of the connection go first (the generators' DELETEs normally did that already)
        deadline = time.monotonic() + 30
        while loadtest_sas(container, block=False) != (0, 0) and time.monotonic() < deadline:
            time.sleep(1)
        if loadtest_sas(container, block=False) != (0, 0):
            terminate_loadtest_sas(session)
        session.unload_conn({"name": CONN_NAME})


def unload_pool(container: str, name: str) -> None:
    """Remove an overflow pool, once its leases are free (charon refuses while they are in use)."""
    if not running(container):
        return
    with vici_session(container, timeout=120) as session:
        if name not in session.get_pools():
            return
        deadline = time.monotonic() + 30
        while True:
            try:
                session.unload_pool({"name": name})
                break
            except CommandException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)


def unload_authority(container: str) -> None:
    """Remove the load-test authority and the certificates charon cached while verifying its users."""
    if not running(container):
        return
    with vici_session(container, timeout=120) as session:
        with contextlib.suppress(CommandException):
            session.unload_authority({"name": AUTHORITY_NAME})
        # certificates cached while verifying load-test users go too (the cache refills itself)
        session.flush_certs({"type": "x509"})


def restart_node(container: str) -> None:
    """Start the node's strongSwan (after a storm stopped it) and wait for its vici socket."""
    docker("exec", container, "systemctl", "start", "strongswan", timeout=120)
    wait_for(lambda: container_path(container, "/run/charon.vici"), f"{container}'s vici socket", 60)


def restart_nodes(hosts: list[LabHost], lbs: list[LabHost], log: Log) -> None:
    """Restart charon on every concentrator (a fresh process: memory per user is then measurable)."""
    for host in hosts:
        docker("exec", host.container, "systemctl", "restart", "strongswan", timeout=120)
    for host in hosts:
        wait_for(
            lambda host=host: container_path(host.container, "/run/charon.vici"), f"{host.name}'s vici", 60
        )
    time.sleep(3)  # let the health checkers notice, if they will
    wait_lbs_see_all_up(lbs, [h.name for h in hosts], log)
    log(f"restarted strongswan on {', '.join(h.name for h in hosts)}")
