"""Who is connected in the lab: read through each host's own vici socket (I/O, no stand-ins)."""

from __future__ import annotations

import socket
import subprocess
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import vici

from svpn.lab.topo import Lab, LabHost


@dataclass(frozen=True)
class ClientStatus:
    host: str
    user: str
    state: str
    virtual_ip: str
    node: str
    app_reachable: bool
    app_reply: str


LAB_CONNECTION = "svpn"  # the farm's connection name, on the nodes and the lab clients alike


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return str(value)


def list_sas(container: str, ike: str | None = None) -> list[dict[str, Any]]:
    """IKE SAs of the charon inside *container* (only connection *ike*'s if given: charon filters, so a
    node holding thousands of load-test SAs sends none of them), through its vici socket from the host."""
    pid = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Pid}}", container], capture_output=True, text=True
    ).stdout.strip()
    if not pid or pid == "0":
        return []
    path = f"/proc/{pid}/root/run/charon.vici"
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return []
    with closing(sock):
        sas = []
        for entry in vici.Session(sock).list_sas({"ike": ike} if ike else None):
            for name, sa in entry.items():
                sas.append({"name": name, **{k: _text(v) for k, v in sa.items() if k != "child-sas"}})
                sas[-1]["children"] = len(sa.get("child-sas", {}))
        return sas


def app_saw(reply: str, vip: str) -> bool:
    """The lab app's reply ("svpn-lab-app NAME client=ADDR") names *vip*: it came through the tunnel."""
    return bool(vip) and reply.strip().endswith(f"client={vip}")


def _probe_app(client: LabHost, url: str) -> str:
    done = subprocess.run(
        ["docker", "exec", client.container, "curl", "--silent", "--max-time", "3", url],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def client_statuses(lab: Lab, app_url: str) -> list[ClientStatus]:
    """One row per lab client: its SA, virtual IP, the node that holds it, and whether the app answers."""
    node_of_vip: dict[str, str] = {}
    for node in lab.group("concentrators"):
        for sa in list_sas(node.container, ike=LAB_CONNECTION):
            for vip in filter(None, sa.get("remote-vips", "").split(",")):
                node_of_vip[vip] = node.name
    rows = []
    for client in lab.group("lab_clients"):
        sas = list_sas(client.container, ike=LAB_CONNECTION)
        sa = sas[0] if sas else {}
        vip = sa.get("local-vips", "").split(",")[0]
        reply = _probe_app(client, app_url) if vip else ""
        rows.append(
            ClientStatus(
                host=client.name,
                user=str(client.hostvars.get("lab_client_user", "?")),
                state=sa.get("state", "DOWN"),
                virtual_ip=vip or "-",
                node=node_of_vip.get(vip, "-"),
                app_reachable=app_saw(reply, vip),
                app_reply=reply,
            )
        )
    return rows
