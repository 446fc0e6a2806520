"""An inventory's files checked as files, and the farm Ansible reads from them: `lint_files` finds what is
wrong with the files themselves (YAML syntax with its position, duplicate keys, documents that are not
mappings, hosts.yml's structure); `farm_inventory` takes what ansible-core read (svpn.core.ansible_inventory,
called by svpn.inventory.tree, the only module here that touches the disk) and `read_problems` checks the
files against it (var files for no group or host, files Ansible ignores, a planned inventory's missing
files) and then the farm (`farm_problems`). Pure: relative paths and file texts, and Ansible's answer.

Duplicate keys: Ansible warns and keeps the last value (DUPLICATE_YAML_DICT_KEY=warn, its default); the check
refuses them, since the value the operator sees first is not the one the farm gets.

Imports svpn.core.ansible_inventory (its data class only) and svpn.inventory's schema, yamlout and checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from svpn.core.ansible_inventory import AnsibleInventory
from svpn.inventory.checks import farm_problems, one_line, shown
from svpn.inventory.schema import ALL_VARS, HOSTS, LB_GROUP, LB_VARS, NODE_GROUP
from svpn.inventory.yamlout import Vaulted

VAR_DIRS = ("group_vars", "host_vars")
VAR_EXTENSIONS = ("", ".yml", ".yaml", ".json")  # what Ansible's host_group_vars reads, in its order


class _Loader(yaml.SafeLoader):
    """SafeLoader that records duplicate mapping keys (yaml.safe_load silently keeps the last one) and knows
    Ansible's own tags (``!vault`` values stay encrypted, ``!unsafe`` ones are strings)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _value in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            loader.duplicates.append(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor("!vault", lambda loader, node: Vaulted(str(loader.construct_scalar(node))))
_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load_yaml(text: str) -> tuple[Any, list[str]]:
    """The document and its duplicate keys; a YAML syntax error raises ValueError with the position."""
    loader = _Loader(text)
    try:
        return loader.get_single_data(), loader.duplicates
    except yaml.YAMLError as err:
        raise ValueError(str(err).replace("\n", " ")) from None
    finally:
        loader.dispose()


class Problems(list[str]):
    def add(self, where: str, message: str) -> None:
        self.append(f"{where}: {message}")


def var_file_owner(path: str) -> tuple[str, str, str] | None:
    """('group_vars' or 'host_vars', the group or host, the way Ansible finds it: '/' for a directory or the
    file's extension) for a file Ansible reads as variables, else None (hidden, backup, other extensions)."""
    parts = path.split("/")
    if len(parts) < 2 or parts[0] not in VAR_DIRS or any(p.startswith(".") for p in parts[1:]):
        return None
    if path.endswith("~"):
        return None
    if len(parts) > 2:
        ext = "." + parts[-1].rsplit(".", 1)[1] if "." in parts[-1] else ""
        return (parts[0], parts[1], "/") if ext in VAR_EXTENSIONS else None
    name, dot, ext = parts[1].rpartition(".")
    if dot and f".{ext}" in VAR_EXTENSIONS[1:]:
        return parts[0], name, f".{ext}"
    return parts[0], parts[1], ""


def lint_files(files: Mapping[str, str]) -> tuple[dict[str, Any], list[str], set[str]]:
    """Each YAML file parsed (relative path -> data), the problems of the files, and the files Ansible
    cannot read (not valid YAML, or var files that are not mappings; hosts.yml when missing)."""
    problems = Problems()
    docs: dict[str, Any] = {}
    broken: set[str] = set()
    for path, text in files.items():
        if path != HOSTS and var_file_owner(path) is None:
            continue
        try:
            data, duplicates = load_yaml(text)
        except ValueError as err:
            problems.add(path, f"not valid YAML: {err}")
            broken.add(path)
            continue
        for duplicate in duplicates:
            problems.add(path, f"{duplicate} (names and keys must be unique)")
        docs[path] = data
        if path != HOSTS and data is not None and not isinstance(data, dict):
            problems.add(path, f"the document must be a mapping, got {shown(data)}")
            broken.add(path)
    if HOSTS not in files:
        problems.add(HOSTS, "missing")
        broken.add(HOSTS)
    elif docs.get(HOSTS) is not None:
        _lint_hosts(docs[HOSTS], problems)
    return docs, list(problems), broken


_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_GROUP_KEYS = ("hosts", "vars", "children")


def _lint_hosts(doc: Any, problems: Problems) -> None:
    """hosts.yml's structure, where Ansible would only warn or guess: groups are mappings of hosts, vars
    and children; host names are names; no group contains itself."""
    if not isinstance(doc, dict):
        problems.add(HOSTS, f"the document must be a mapping, got {shown(doc)}")
        return
    for name, body in doc.items():
        _lint_group(body, str(name), problems, frozenset())


def _lint_group(body: Any, where: str, problems: Problems, path: frozenset[int]) -> None:
    if body is None:
        return
    if id(body) in path:  # a YAML alias of an enclosing group
        problems.add(HOSTS, f"{where}: a group cannot contain itself")
        return
    if not isinstance(body, dict):
        problems.add(HOSTS, f"{where}: {body!r}; a group is a mapping of hosts, vars and children")
        return
    for key in body:
        if key not in _GROUP_KEYS:
            problems.add(HOSTS, f"{where}: unknown key {key!r}; valid: {', '.join(_GROUP_KEYS)}")
    for key in _GROUP_KEYS:
        if body.get(key) is not None and not isinstance(body[key], dict):
            problems.add(HOSTS, f"{where}.{key} must be a mapping, got {shown(body[key])}")
    for name, inline in (body.get("hosts") if isinstance(body.get("hosts"), dict) else {}).items():
        if not _HOST_NAME.fullmatch(str(name)):
            problems.add(HOSTS, f"{where}.hosts.{name}: not a valid host name (letters, digits, ., _ and -)")
        if inline is not None and not isinstance(inline, dict):
            problems.add(HOSTS, f"{where}.hosts.{name}: {inline!r}; a host's entry is a mapping (or empty)")
    for name, child in (body.get("children") if isinstance(body.get("children"), dict) else {}).items():
        _lint_group(child, f"{where}.children.{name}", problems, path | {id(body)})


@dataclass(frozen=True)
class FarmInventory:
    """An inventory directory as Ansible sees it: the farm-wide values, groups and hostvars, and the files'
    parsed documents (vault values kept encrypted: what growing an inventory carries over)."""

    farm: dict[str, Any]
    groups: dict[str, list[str]]
    hostvars: dict[str, dict[str, Any]]
    docs: dict[str, Any]  # each parsed YAML file (relative path -> data)


def farm_inventory(read: AnsibleInventory, docs: Mapping[str, Any]) -> FarmInventory:
    return FarmInventory(read.all_vars, read.groups, read.hostvars, dict(docs))


def read_problems(files: Mapping[str, str], loaded: FarmInventory) -> list[str]:
    """The files checked against what Ansible read from them, then `farm_problems` of the farm; [] if fine."""
    problems = Problems()
    _check_var_files(files, loaded.groups, problems)
    if "svpn_plan" in loaded.farm:  # the planner writes these files; without them a plan cannot be grown
        _check_planned_files(files, loaded.groups, problems)
    return [one_line(line) for line in problems] + farm_problems(loaded.farm, loaded.groups, loaded.hostvars)


def _check_var_files(files: Mapping[str, str], groups: Mapping[str, list[str]], problems: Problems) -> None:
    """Every var file is for a group or host Ansible knows, and is one Ansible reads: it takes the first of
    NAME/, NAME, NAME.yml, NAME.yaml, NAME.json and ignores the others."""
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for path in sorted(files):
        owner = var_file_owner(path)
        if owner is not None:
            found.setdefault(owner[:2], []).append((owner[2], path))
    for (kind, name), entries in found.items():
        paths = [path for _way, path in entries]
        if kind == "group_vars" and name not in groups:
            problems.add(paths[0], "no such group in hosts.yml")
        elif kind == "host_vars" and name not in groups["all"]:
            problems.add(paths[0], "no such host in hosts.yml (left over from an earlier plan?)")
        ways = sorted({way for way, _path in entries}, key=lambda way: ("/", *VAR_EXTENSIONS).index(way))
        for way, path in entries:
            if way != ways[0]:
                read = f"{kind}/{name}/" if ways[0] == "/" else f"{kind}/{name}{ways[0]}"
                problems.add(path, f"ignored by Ansible, which reads {read} instead; merge the two")
    if ("group_vars", "all") not in found and "all" not in _hosts_all_vars(files):
        problems.add(ALL_VARS, "missing")


def _hosts_all_vars(files: Mapping[str, str]) -> set[str]:
    """'all' if hosts.yml's all group has vars (the farm-wide settings may live there), else empty."""
    try:
        doc, _duplicates = load_yaml(files.get(HOSTS, ""))
    except ValueError:
        return set()
    body = doc.get("all") if isinstance(doc, dict) else None
    return {"all"} if isinstance(body, dict) and body.get("vars") else set()


def has_vars_file(files: Mapping[str, str], kind: str, name: str) -> bool:
    return any(
        var_file_owner(path) in {(kind, name, way) for way in ("/", *VAR_EXTENSIONS)} for path in files
    )


def _check_planned_files(
    files: Mapping[str, str], groups: Mapping[str, list[str]], problems: Problems
) -> None:
    """A planned inventory has every file the planner writes (as a file or as a directory)."""
    if not has_vars_file(files, "group_vars", LB_GROUP):
        problems.add(LB_VARS, "missing")
    for host in dict.fromkeys([*groups.get(LB_GROUP, []), *groups.get(NODE_GROUP, [])]):
        if not has_vars_file(files, "host_vars", host):
            problems.add(f"host_vars/{host}.yml", "missing")
