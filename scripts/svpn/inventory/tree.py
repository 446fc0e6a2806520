"""An inventory directory as a file tree: read its planner-relevant files, diff two trees, find host files
an earlier plan left behind, write a tree (atomically, hosts.yml last), and a one-line summary. The only
svpn.inventory module that touches the disk.

Imports svpn.core, svpn.farm.facts and svpn.inventory's schema and read.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from svpn.core.errors import SvpnError
from svpn.core.files import atomic_write
from svpn.farm.facts import pool_leases
from svpn.inventory.read import read_farm
from svpn.inventory.schema import CAPACITY_MD, CAPACITY_SVG, GENERATED_MARK, HOSTS, LB_GROUP, NODE_GROUP


def read_tree(directory: Path) -> dict[str, str]:
    """The planner-relevant files of an inventory directory (relative path -> text)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SvpnError(f"inventory: {directory} is not a directory")
    files: dict[str, str] = {}
    candidates = [directory / HOSTS, directory / CAPACITY_MD, directory / CAPACITY_SVG]
    for sub in ("group_vars", "host_vars"):
        if (directory / sub).is_dir():
            candidates += sorted((directory / sub).glob("*.yml"))
    for path in candidates:
        if path.is_file():
            files[path.relative_to(directory).as_posix()] = path.read_text(encoding="utf-8")
    return files


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


def summary(files: Mapping[str, str]) -> str:
    """One line about a checked (valid) inventory."""
    loaded, _problems = read_farm(files)
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
