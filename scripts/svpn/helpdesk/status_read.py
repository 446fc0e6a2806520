"""`svpn status`'s I/O: two Ansible runs started together (every concentrator, every LB: one round trip
each, :mod:`svpn.helpdesk.remote`), the inventory read meanwhile (its hosts and ``svpn_pki_dir``), the PKI's
files; :func:`svpn.helpdesk.status.farm_status` makes the status of what they gave.

A group whose run fails as a whole (Ansible missing a host's variable, a timeout) shows each of its hosts with
that reason; the other group and the certificates are still reported.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from svpn.access.pki import clock
from svpn.access.pki.cert_index import Index
from svpn.access.pki.expiry import CRL_WARN_DAYS, WARN_DAYS, expiry_warnings
from svpn.core.ansible_inventory import ANSIBLE_WAY, AnsibleInventory, VaultOptions, read_inventory
from svpn.core.errors import SvpnError
from svpn.helpdesk import remote
from svpn.helpdesk.answers import User
from svpn.helpdesk.directory import users_of
from svpn.helpdesk.status import FarmStatus, farm_status
from svpn.helpdesk.status_hosts import CONCENTRATOR_COMMAND, FARM_PATTERN, LB_COMMAND, farm_command, per_host
from svpn.helpdesk.status_pki import EVERYTHING, PkiStatus, pki_status

CONNECT_SECONDS = 10  # an SSH host that does not answer within this counts as unreachable
RUN_SECONDS = 40.0  # the whole Ansible run of a group


def pki_dir_of(inventory_dir: Path, inventory: AnsibleInventory) -> Path:
    """The inventory's ``svpn_pki_dir``, templated as a play would (``{{ playbook_dir }}`` is the repository's
    playbooks directory beside the inventories, lookups run); SvpnError asking for --pki when it cannot be."""
    value = inventory.all_vars.get("svpn_pki_dir")
    if not value:
        raise SvpnError(
            f"{inventory_dir}: svpn_pki_dir is not set in group_vars/all; give the PKI with --pki DIR"
        )
    text = str(value)
    if "{{" in text or "{%" in text:
        text = _template(text, inventory_dir.resolve().parent.parent / "playbooks", inventory.all_vars)
    return Path(text).resolve()


def _template(text: str, playbook_dir: Path, variables: dict[str, object]) -> str:
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    remote.plugins_loaded()
    templar = Templar(loader=DataLoader(), variables={**variables, "playbook_dir": str(playbook_dir)})
    try:
        result = templar.template(trust_as_template(text))
    except AnsibleError as err:
        why = " ".join(str(getattr(err, "message", err)).split())
        raise SvpnError(
            f"svpn_pki_dir {text!r} cannot be templated here ({why}); give the PKI with --pki DIR"
        ) from None
    if not isinstance(result, str) or not result or "{{" in result:
        raise SvpnError(f"svpn_pki_dir {text!r} templates to {result!r}; give the PKI with --pki DIR")
    return result


FARM_COMMAND = farm_command(LB_COMMAND, CONCENTRATOR_COMMAND)


def _run(
    inventory: Path, vault: VaultOptions, in_process: bool, prepared: Any = None
) -> dict[str, remote.HostResult] | str:
    """Every host's result, or why the run failed as a whole."""
    extra = {"ansible_ssh_timeout": CONNECT_SECONDS}
    try:
        if in_process:
            return remote.run_here(
                inventory, FARM_PATTERN, FARM_COMMAND, vault=vault, extra_vars=extra, prepared=prepared
            )
        return remote.run(
            inventory, FARM_PATTERN, FARM_COMMAND, vault=vault, timeout=RUN_SECONDS, extra_vars=extra
        )
    except SvpnError as err:
        return str(err)


def read_pki(
    pki_dir: Path, now: dt.datetime, days: int, crl_days: int = CRL_WARN_DAYS, users: list[User] | None = None
) -> PkiStatus:
    """The certificates' part from the PKI directory (files only: no passphrase); *users*: the index's, when
    the caller has read them already."""
    items = expiry_warnings(pki_dir, now, EVERYTHING, EVERYTHING)
    if users is None:
        users = users_of(Index.load(pki_dir).certs, now)
    return pki_status(str(pki_dir), items, users, now, days, crl_days)


def read_status(
    inventory: Path,
    pki: Path | None = None,
    days: int = WARN_DAYS,
    vault: VaultOptions = ANSIBLE_WAY,
    in_process: bool = False,
) -> FarmStatus:
    """The farm's status: every host asked in one Ansible run (in this process with *in_process*: the CLI;
    else in a child, while the inventory and the PKI are read here)."""
    if not inventory.is_dir():
        raise SvpnError(f"--inventory: {inventory} is not a directory; give the farm's inventory directory")
    now = clock.now()
    with ThreadPoolExecutor(max_workers=1) as pool:
        child = None if in_process else pool.submit(_run, inventory, vault, False)
        hosts = read_inventory(inventory, vault)
        pki_part, pki_why = None, ""
        try:
            pki_part = read_pki(pki if pki is not None else pki_dir_of(inventory, hosts), now, days)
        except SvpnError as err:
            pki_why = str(err)
        answers = child.result() if child is not None else _run(inventory, vault, True, hosts.ansible)
    return farm_status(
        inventory=str(inventory),
        checked_at=clock.iso(now),
        concentrators=per_host(hosts.groups.get("concentrators", []), answers),
        loadbalancers=per_host(hosts.groups.get("loadbalancers", []), answers),
        pki=pki_part,
        pki_why=pki_why,
    )
