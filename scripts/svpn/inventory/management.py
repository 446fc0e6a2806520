"""SSH is never closed by accident: the check that an SSH-managed farm host keeps SSH open to the controller.

Both roles' firewalls accept SSH only from their ``*_management_networks`` (by default the farm-wide
``svpn_management_networks``); with none, the first deploy would close SSH on a host Ansible reaches over
SSH and lock the operator out of the farm, and out of every later playbook. Hosts reached another way (the
lab's and the scenarios' docker connection, ``local``) are not concerned. Pure; part of
:func:`svpn.inventory.checks.farm_problems`. Imports svpn.core and svpn.inventory.schema.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from svpn.inventory.schema import LB_GROUP, NODE_GROUP

FARM_KEY = "svpn_management_networks"
ROLE_KEYS = {NODE_GROUP: "concentrator_management_networks", LB_GROUP: "loadbalancer_management_networks"}
# Ansible's connection plugins that log in over SSH (ansible_connection unset means ssh)
SSH_CONNECTIONS = frozenset(
    {
        "ssh",
        "ansible.builtin.ssh",
        "ansible.legacy.ssh",
        "paramiko",
        "paramiko_ssh",
        "ansible.builtin.paramiko_ssh",
    }
)


def networks(value: Any, where: str, out: list[str]) -> list[ipaddress.IPv4Network] | None:
    """*value* as a list of IPv4 networks; a problem naming *where* (and None) if it is not one."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        out.append(f"{where}: must be a list of networks (CIDR), got {value!r}")
        return None
    found = []
    for item in value:
        try:
            found.append(ipaddress.IPv4Network(str(item), strict=True))
        except ValueError as err:
            out.append(f"{where}: {item!r} is not an IPv4 network in CIDR notation ({err})")
            return None
    return found


def connection(host_vars: Mapping[str, Any]) -> str:
    return str(host_vars.get("ansible_connection", "ssh"))


def is_ssh_managed(host_vars: Mapping[str, Any]) -> bool:
    return connection(host_vars) in SSH_CONNECTIONS


def firewall_networks(
    host: str, group: str, host_vars: Mapping[str, Any], out: list[str]
) -> tuple[str, str, list[ipaddress.IPv4Network] | None]:
    """What the host's firewall accepts SSH from, as the roles' defaults decide it: (the variable that
    holds it, the role's own variable, its networks or None with a problem in *out* if malformed)."""
    role_key = ROLE_KEYS[group]
    key = role_key if role_key in host_vars else FARM_KEY
    return key, role_key, networks(host_vars.get(key), f"host {host}: {key}", out)


def ssh_problems(host: str, group: str, host_vars: Mapping[str, Any], out: list[str]) -> None:
    """A farm host of *group* (concentrators or loadbalancers) whose firewall would drop SSH although
    Ansible manages it over SSH; also a malformed management list, managed over SSH or not."""
    key, role_key, found = firewall_networks(host, group, host_vars, out)
    if found is None or found or not is_ssh_managed(host_vars):
        return
    out.append(
        f"host {host}: managed over SSH (ansible_connection {connection(host_vars)}) but {key} is empty: "
        "the firewall would accept no SSH and the first deploy would lock the controller out; list the "
        f"networks SSH comes from in {FARM_KEY} (svpn plan --management-networks CIDR,...) or {role_key}"
    )


def ssh_source_problem(host: str, ssh_connection: str, host_vars: Mapping[str, Any]) -> str:
    """The live half of the check, on a host already reached over SSH: the controller's address as the host
    sees it (the first field of the session's ``$SSH_CONNECTION``) must be inside the networks its
    firewall will accept SSH from, or the deploy would close the session it runs in. '' when it is."""
    group = NODE_GROUP if NODE_GROUP in host_vars.get("group_names", ()) else LB_GROUP
    out: list[str] = []
    key, role_key, found = firewall_networks(host, group, host_vars, out)
    if found is None:
        return out[0]
    fields = ssh_connection.split()
    try:
        source = ipaddress.ip_address(fields[0] if fields else "")
    except ValueError:
        return f"host {host}: cannot tell where SSH comes from ($SSH_CONNECTION is {ssh_connection!r})"
    if any(source in network for network in found):
        return ""
    shown = ", ".join(str(network) for network in found) or "none"
    return (
        f"host {host}: the controller's SSH arrives from {source}, outside {key} ({shown}): the deploy would "
        f"close this session and lock the controller out; add the network {source} is in to {FARM_KEY} "
        f"(svpn plan --management-networks) or {role_key}"
    )
