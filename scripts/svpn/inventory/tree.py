"""An inventory directory as a file tree: read it (its files, and the farm as ansible-core reads it, the one
reader: svpn.core.ansible_inventory), check it, diff two trees, find host files an earlier plan left behind,
write a tree (atomically, hosts.yml last), and a one-line summary. The only svpn.inventory module that touches
the disk.

Imports svpn.core, svpn.farm.facts and svpn.inventory's schema and read.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from svpn.core.ansible_inventory import ANSIBLE_WAY, VaultOptions, read_inventory
from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write
from svpn.farm.facts import pool_leases
from svpn.inventory.read import FarmInventory, farm_inventory, lint_files, read_problems, var_file_owner
from svpn.inventory.schema import CAPACITY_MD, CAPACITY_SVG, GENERATED_MARK, HOSTS, LB_GROUP, NODE_GROUP


def read_tree(directory: Path) -> dict[str, str]:
    """The files of an inventory directory that the planner writes or Ansible reads as variables
    (relative path -> text): hosts.yml, CAPACITY.md and its chart, every group_vars/ and host_vars/ file."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SvpnError(f"inventory: {directory} is not a directory")
    files: dict[str, str] = {}
    candidates = [directory / HOSTS, directory / CAPACITY_MD, directory / CAPACITY_SVG]
    for sub in ("group_vars", "host_vars"):
        if (directory / sub).is_dir():
            candidates += sorted(p for p in (directory / sub).rglob("*") if p.is_file())
    for path in candidates:
        relative = path.relative_to(directory).as_posix()
        if path.is_file() and (relative in (HOSTS, CAPACITY_MD, CAPACITY_SVG) or var_file_owner(relative)):
            try:
                files[relative] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                raise SvpnError(f"inventory: cannot read {path}: {err}") from None
    return files


@dataclass(frozen=True)
class Loaded:
    """An inventory directory read: its files, the farm Ansible reads (None if it cannot read hosts.yml),
    and every problem of the files and the farm."""

    files: dict[str, str]
    farm: FarmInventory | None
    problems: list[str]


def load(directory: Path, vault: VaultOptions = ANSIBLE_WAY) -> Loaded:
    """Read and check an inventory directory. Files Ansible could not read (not YAML, not a mapping) are
    problems; the rest of the farm is still read (from a copy without them) and checked."""
    files = read_tree(directory)
    docs, problems, broken = lint_files(files)
    if HOSTS in broken:
        return Loaded(files, None, problems)
    if broken:
        return _load_copy(files, docs, problems, broken, vault)
    farm = farm_inventory(read_inventory(directory, vault), docs)
    return Loaded(files, farm, problems + read_problems(files, farm))


def _load_copy(
    files: Mapping[str, str], docs: dict, problems: list[str], broken: set[str], vault: VaultOptions
) -> Loaded:
    readable = {path: text for path, text in files.items() if path not in broken}
    with tempfile.TemporaryDirectory(prefix="svpn-inventory-") as tmp:
        write_files(Path(tmp), readable)
        farm = farm_inventory(read_inventory(tmp, vault), docs)
    return Loaded(dict(files), farm, problems + read_problems(files, farm))


def write_files(directory: Path, files: Mapping[str, str]) -> None:
    """Write a file tree as it is (for a throw-away copy; `write_tree` writes an inventory)."""
    for path, text in files.items():
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def load_files(files: Mapping[str, str], vault: VaultOptions = ANSIBLE_WAY) -> Loaded:
    """`load` for an inventory given as files (relative path -> text), read from a throw-away copy."""
    with tempfile.TemporaryDirectory(prefix="svpn-inventory-") as tmp:
        write_files(Path(tmp), files)
        return load(Path(tmp), vault)


def check_files(files: Mapping[str, str], vault: VaultOptions = ANSIBLE_WAY) -> list[str]:
    """Every problem of an inventory given as files; [] if fine."""
    return load_files(files, vault).problems


# --------------------------------------------------------------------------- diff and write


def tree_diff(old: Mapping[str, str], new: Mapping[str, str], label: str) -> str:
    """A unified diff of two file trees (new files come from /dev/null); the chart is summarised."""
    chunks: list[str] = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before == after:
            continue
        if path == CAPACITY_SVG:
            chunks.append(f"--- {label}/{path}: chart {'redrawn' if before is not None else 'added'}\n")
            continue
        chunks += difflib.unified_diff(
            (before or "").splitlines(keepends=True),
            (after or "").splitlines(keepends=True),
            fromfile=f"a/{label}/{path}" if before is not None else "/dev/null",
            tofile=f"b/{label}/{path}" if after is not None else "/dev/null",
        )
    return "".join(chunks)


def stale_host_files(old: Mapping[str, str], new: Mapping[str, str]) -> list[str]:
    """host_vars files an earlier plan wrote for hosts the new plan does not have."""
    return sorted(
        path
        for path, text in old.items()
        if path.startswith("host_vars/") and path not in new and text.startswith(GENERATED_MARK)
    )


def write_tree(directory: Path, files: Mapping[str, str], remove: Iterable[str] = ()) -> list[str]:
    """Write changed files (each atomically; hosts.yml last), remove *remove*; the paths changed."""
    directory = Path(directory)
    changed = []
    order = sorted(files, key=lambda path: (path == HOSTS, path))
    for path in order:
        target = directory / path
        if target.is_file() and target.read_text(encoding="utf-8") == files[path]:
            continue
        atomic_write(target, files[path])
        changed.append(path)
    for path in remove:
        os.unlink(directory / path)
        changed.append(path)
    return changed


def summary(loaded: FarmInventory) -> str:
    """One line about a checked (valid) inventory."""
    nodes, lbs = loaded.groups.get(NODE_GROUP, []), loaded.groups.get(LB_GROUP, [])
    others = [host for host in loaded.groups["all"] if host not in nodes and host not in lbs]
    smallest = min(
        pool_leases(ipaddress.IPv4Network(loaded.hostvars[n]["concentrator_pool"]).prefixlen) for n in nodes
    )
    parts = [f"{len(nodes)} concentrators", f"{len(lbs)} load balancers"]
    if others:
        parts.append(f"{len(others)} other hosts")
    if "svpn_users" in loaded.farm:
        parts.append(f"{loaded.farm['svpn_users']:,} users")
    return f"{', '.join(parts)}; smallest pool {smallest:,} addresses"
