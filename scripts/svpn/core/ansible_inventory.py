"""The one reader of inventories on disk: ansible-core's own (DataLoader, InventoryManager, VariableManager).

What the `svpn` tools see is what the playbooks see: hosts.yml's groups and inline vars, ``group_vars/`` and
``host_vars/`` as files (.yml, .yaml, .json) or as directories (``group_vars/all/{main,vault}.yml``),
Ansible's variable precedence, and values encrypted with ``ansible-vault encrypt_string``, decrypted with the
vault secrets found the Ansible way (``--vault-password-file``, ``--vault-id``, ANSIBLE_VAULT_PASSWORD_FILE,
ANSIBLE_VAULT_IDENTITY_LIST, ansible.cfg). Values come back as plain Python data; Jinja expressions are kept
as their text, as Ansible keeps them until a play templates them (``{{ playbook_dir }}`` is a play's).

ansible-core is imported when an inventory is read, not when this module is: commands that read none start
as fast as before. Imports svpn.core.errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svpn.core.errors import SvpnError

VAULT_HINT = (
    "give the vault password the Ansible way: --vault-password-file FILE or --vault-id [LABEL@]FILE "
    "(or ANSIBLE_VAULT_PASSWORD_FILE / ANSIBLE_VAULT_IDENTITY_LIST)"
)
# variables VariableManager adds for a host that no inventory file sets (inventory_hostname and group_names
# stay: the checks name hosts by them)
_HOST_MAGIC = (
    "inventory_dir",
    "inventory_file",
    "inventory_hostname_short",
    "ansible_facts",
    "ansible_local",
)


@dataclass(frozen=True)
class VaultOptions:
    """Where vault passwords come from, besides what ansible.cfg and the environment name."""

    password_files: tuple[str, ...] = ()
    vault_ids: tuple[str, ...] = ()  # [LABEL@]SOURCE, as ansible-playbook --vault-id

    def argv(self) -> list[str]:
        """The options as ``ansible`` and ``ansible-playbook`` take them."""
        return [f"--vault-password-file={f}" for f in self.password_files] + [
            f"--vault-id={v}" for v in self.vault_ids
        ]


ANSIBLE_WAY = VaultOptions()  # no options: only what ansible.cfg and the environment name


@dataclass(frozen=True)
class AnsibleInventory:
    """An inventory as Ansible reads it, in plain Python data."""

    groups: dict[str, list[str]]  # Ansible's ``groups``: each group's hosts, with all and ungrouped
    hostvars: dict[str, dict[str, Any]]  # each host's variables merged by Ansible's precedence
    all_vars: dict[str, Any]  # the group all's variables: hosts.yml all.vars < group_vars/all
    # Ansible's own objects behind it (DataLoader, InventoryManager, VariableManager), for a caller that runs
    # Ansible in the same process next (svpn.helpdesk.remote.run_here) and need not read the files again
    ansible: Any = field(default=None, compare=False, repr=False)


def vault_secrets(loader: Any, vault: VaultOptions) -> list[Any]:
    """The vault secrets as ansible-playbook gathers them (CLI._play_prereqs: ansible.cfg's and
    ANSIBLE_VAULT_IDENTITY_LIST's identities first, then --vault-id, then the password files; its own
    functions, so ANSIBLE_VAULT_PASSWORD_FILE counts too). Prompts only for a ``--vault-id ...@prompt``."""
    from ansible import constants
    from ansible.cli import CLI
    from ansible.errors import AnsibleError

    try:
        return list(
            CLI.setup_vault_secrets(
                loader,
                vault_ids=[*constants.DEFAULT_VAULT_IDENTITY_LIST, *vault.vault_ids],
                vault_password_files=list(vault.password_files),
                auto_prompt=False,
                initialize_context=False,
            )
        )
    except AnsibleError as err:
        raise SvpnError(f"vault password: {_one_line(err)}") from None


def read_inventory(directory: Path | str, vault: VaultOptions = ANSIBLE_WAY) -> AnsibleInventory:
    """Read *directory* with ansible-core; SvpnError (one line, no traceback) if Ansible cannot."""
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.utils.vars import combine_vars
    from ansible.vars.manager import VariableManager
    from ansible.vars.plugins import get_vars_from_inventory_sources

    directory = Path(directory)
    if not directory.is_dir():
        raise SvpnError(f"inventory: {directory} is not a directory")
    _forget_found_files()
    loader = DataLoader()
    secrets = vault_secrets(loader, vault)
    loader.set_vault_secrets(secrets)
    source = os.fspath(directory.resolve())
    try:
        inventory = InventoryManager(loader=loader, sources=[source])
        manager = VariableManager(loader=loader, inventory=inventory)
        magic = {*manager.get_vars(include_hostvars=False), *_HOST_MAGIC}
        groups = {name: list(hosts) for name, hosts in inventory.get_groups_dict().items()}
        everyone = inventory.groups["all"]
        all_vars = combine_vars(
            everyone.get_vars(), get_vars_from_inventory_sources(loader, [source], [everyone], "task")
        )
        raw = {
            host.name: manager.get_vars(host=host, include_hostvars=False)
            for host in inventory.get_hosts(ignore_restrictions=True)
        }
    except AnsibleError as err:
        raise SvpnError(f"{directory}: Ansible cannot read the inventory: {_one_line(err)}") from None
    plain = _Plain(secrets)
    hostvars = {
        host: {key: plain.value(value, key) for key, value in values.items() if key not in magic}
        for host, values in raw.items()
    }
    all_plain = {key: plain.value(v, key) for key, v in all_vars.items()}
    return AnsibleInventory(groups, hostvars, all_plain, ansible=(loader, inventory, manager))


def _forget_found_files() -> None:
    """host_group_vars remembers, per process, which var files (and missing directories) it found: right for
    one ansible-playbook run, stale for a process that reads an inventory again after writing it."""
    from ansible.plugins.vars import host_group_vars

    for cache in (host_group_vars.FOUND, host_group_vars.NAK, host_group_vars.CANONICAL_PATHS):
        cache.clear()


class _Plain:
    """Ansible's tagged values as plain Python data; vault-encrypted strings decrypted (once each)."""

    def __init__(self, secrets: list[Any]) -> None:
        from ansible.parsing.vault import VaultLib

        self._vault = VaultLib(secrets)
        self._has_secrets = bool(secrets)
        self._decrypted: dict[str, str] = {}

    def value(self, value: Any, name: str) -> Any:
        from ansible.parsing.vault import EncryptedString

        if isinstance(value, EncryptedString):
            return self._decrypt(value, name)
        if isinstance(value, Mapping):
            return {self.value(k, name): self.value(v, f"{name}.{k}") for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item, f"{name}[{i}]") for i, item in enumerate(value)]
        for native in (bool, str, int, float):  # bool first: a bool is an int
            if isinstance(value, native):
                return native(value)
        return value

    def _decrypt(self, value: Any, name: str) -> str:
        from ansible.errors import AnsibleError
        from ansible.parsing.vault import VaultHelper

        ciphertext = VaultHelper.get_ciphertext(value, with_tags=True)
        if ciphertext in self._decrypted:
            return self._decrypted[ciphertext]
        try:
            plaintext = self._vault.decrypt(ciphertext).decode("utf-8")
        except AnsibleError as err:
            why = "no vault password was given" if not self._has_secrets else _one_line(err)
            hint = VAULT_HINT if not self._has_secrets else "check the vault password (or --vault-id label)"
            raise SvpnError(
                f"{_origin(value)}{name} is vault-encrypted and cannot be read: {why}; {hint}"
            ) from None
        self._decrypted[ciphertext] = plaintext
        return plaintext


def _origin(value: Any) -> str:
    """'FILE:LINE: ' where Ansible found *value* (its Origin tag), or '' if it does not say."""
    from ansible.module_utils._internal._datatag import AnsibleTagHelper

    for tag in AnsibleTagHelper.tags(value):
        path, line = getattr(tag, "path", None), getattr(tag, "line_num", None)
        if path:
            return f"{path}:{line}: " if line else f"{path}: "
    return ""


def _one_line(err: Exception) -> str:
    """Ansible's message without its multi-line source excerpt."""
    message = getattr(err, "message", None) or str(err)
    return " ".join(str(message).split())
