"""Reading an inventory's files as Ansible would: YAML with duplicate keys found, hosts.yml's groups and
host vars, the variables merged per host (`read_farm`), and every problem of the files and the farm they
describe (`check_tree`). Pure: it takes relative paths and file texts.

Imports svpn.inventory's schema and checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from svpn.inventory.checks import farm_problems, one_line, shown
from svpn.inventory.schema import ALL_VARS, HOSTS, LB_GROUP, LB_VARS, NODE_GROUP, host_vars_path


class _Loader(yaml.SafeLoader):
    """SafeLoader that records duplicate mapping keys (yaml.safe_load silently keeps the last one)."""

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


def _mapping(problems: Problems, where: str, value: Any, what: str) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    problems.add(where, f"{what} must be a mapping, got {shown(value)}")
    return None


def _parse_files(files: Mapping[str, str], problems: Problems) -> dict[str, Any]:
    docs: dict[str, Any] = {}
    for path, text in files.items():
        if not path.endswith(".yml"):
            continue
        try:
            data, duplicates = load_yaml(text)
        except ValueError as err:
            problems.add(path, f"not valid YAML: {err}")
            continue
        for duplicate in duplicates:
            problems.add(path, f"{duplicate} (names and keys must be unique)")
        docs[path] = data
    for required in (HOSTS, ALL_VARS):
        if required not in files:
            problems.add(required, "missing")
    return docs


_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_GROUP_KEYS = ("hosts", "vars", "children")


@dataclass
class _Hosts:
    """hosts.yml as Ansible reads it: each group's own hosts, child groups and vars; each host's vars."""

    hosts: dict[str, list[str]] = field(default_factory=lambda: {"all": []})
    children: dict[str, list[str]] = field(default_factory=lambda: {"all": []})
    group_vars: dict[str, dict[str, Any]] = field(default_factory=dict)
    host_vars: dict[str, dict[str, Any]] = field(default_factory=dict)

    def visit(
        self, group: str, body: Any, where: str, problems: Problems, path: frozenset[int] = frozenset()
    ) -> None:
        self.hosts.setdefault(group, [])
        self.children.setdefault(group, [])
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
        hosts = body.get("hosts") or {}
        if _mapping(problems, HOSTS, hosts, f"{where}.hosts") is None:
            hosts = {}
        for name, inline in hosts.items():
            host = str(name)
            if not _HOST_NAME.fullmatch(host):
                problems.add(
                    HOSTS, f"{where}.hosts.{host}: not a valid host name (letters, digits, ., _ and -)"
                )
            if inline is not None and not isinstance(inline, dict):
                problems.add(
                    HOSTS, f"{where}.hosts.{host}: {inline!r}; a host's entry is a mapping (or empty)"
                )
                inline = None
            if host not in self.hosts[group]:
                self.hosts[group].append(host)
            self.host_vars.setdefault(host, {}).update(inline or {})
        group_vars = body.get("vars") or {}
        if _mapping(problems, HOSTS, group_vars, f"{where}.vars") is not None:
            self.group_vars.setdefault(group, {}).update(group_vars)
        children = body.get("children") or {}
        if _mapping(problems, HOSTS, children, f"{where}.children") is None:
            children = {}
        for name, child in children.items():
            if str(name) not in self.children[group]:
                self.children[group].append(str(name))
            self.visit(str(name), child, f"{where}.children.{name}", problems, path | {id(body)})

    def members(self, group: str, seen: frozenset[str] = frozenset()) -> list[str]:
        """The group's hosts, its child groups' included (as Ansible's ``groups``)."""
        found = list(self.hosts.get(group, []))
        for child in self.children.get(group, []):
            if child not in seen:
                found += self.members(child, seen | {group})
        return list(dict.fromkeys(found))

    def depths(self) -> dict[str, int]:
        depth = {"all": 0}
        todo = ["all"]
        while todo:
            group = todo.pop()
            for child in self.children.get(group, []):
                if depth.get(child, -1) < depth[group] + 1 and depth[group] < len(self.children):
                    depth[child] = depth[group] + 1
                    todo.append(child)
        return depth


def _read_hosts(doc: Any, problems: Problems) -> _Hosts:
    parsed = _Hosts()
    if doc is None:
        return parsed
    root = _mapping(problems, HOSTS, doc, "the document")
    for name, body in (root or {}).items():
        if str(name) != "all" and str(name) not in parsed.children["all"]:
            parsed.children["all"].append(str(name))
        parsed.visit(str(name), body, str(name), problems)
    return parsed


@dataclass(frozen=True)
class FarmInventory:
    """An inventory directory as Ansible sees it: the farm-wide values, groups and hostvars."""

    farm: dict[str, Any]
    groups: dict[str, list[str]]
    hostvars: dict[str, dict[str, Any]]
    docs: dict[str, Any]  # each parsed .yml file (relative path -> data)


def read_farm(files: Mapping[str, str]) -> tuple[FarmInventory, list[str]]:
    """The farm an inventory's files describe, and the problems of the files themselves.

    Variables merge as Ansible merges them: hosts.yml group vars (all, then by depth and name) <
    group_vars/all.yml < group_vars/GROUP.yml < hosts.yml host vars < host_vars/HOST.yml.
    """
    problems = Problems()
    docs = _parse_files(files, problems)
    parsed = _read_hosts(docs.get(HOSTS), problems)
    groups = _groups(parsed)
    _check_var_files(files, docs, groups, problems)
    farm = {**parsed.group_vars.get("all", {}), **_file_vars(docs, ALL_VARS)}
    if "svpn_plan" in farm:  # the planner writes these files; without them a plan cannot be grown
        _check_planned_files(files, groups, problems)
    depth = parsed.depths()
    hostvars = {host: _merged_vars(host, parsed, depth, groups, docs) for host in groups["all"]}
    return FarmInventory(farm, groups, hostvars, docs), list(problems)


def _groups(parsed: _Hosts) -> dict[str, list[str]]:
    """Group -> its hosts (child groups' included), as Ansible's ``groups``: with all and ungrouped."""
    groups = {group: parsed.members(group) for group in parsed.hosts}
    everyone = list(dict.fromkeys([*groups["all"], *parsed.host_vars]))
    groups["all"] = everyone
    in_a_group = {host for group, hosts in groups.items() if group != "all" for host in hosts}
    groups.setdefault("ungrouped", [])
    groups["ungrouped"] = list(
        dict.fromkeys([*groups["ungrouped"], *(h for h in everyone if h not in in_a_group)])
    )
    return groups


def _file_vars(docs: Mapping[str, Any], path: str) -> dict[str, Any]:
    doc = docs.get(path)
    return doc if isinstance(doc, dict) else {}


def _check_var_files(
    files: Mapping[str, str], docs: Mapping[str, Any], groups: Mapping[str, list[str]], problems: Problems
) -> None:
    """group_vars/ and host_vars/ files are mappings, each for a group or host hosts.yml has."""
    for path in sorted(p for p in docs if p.startswith(("group_vars/", "host_vars/"))):
        if docs[path] is not None:
            _mapping(problems, path, docs[path], "the document")
    for path in sorted(p for p in files if p.startswith("group_vars/")):
        if path.removeprefix("group_vars/").removesuffix(".yml") not in groups:
            problems.add(path, "no such group in hosts.yml")
    for path in sorted(p for p in files if p.startswith("host_vars/")):
        if path.removeprefix("host_vars/").removesuffix(".yml") not in groups["all"]:
            problems.add(path, "no such host in hosts.yml (left over from an earlier plan?)")


def _check_planned_files(
    files: Mapping[str, str], groups: Mapping[str, list[str]], problems: Problems
) -> None:
    """A planned inventory has every file the planner writes."""
    if LB_VARS not in files:
        problems.add(LB_VARS, "missing")
    for host in dict.fromkeys([*groups.get(LB_GROUP, []), *groups.get(NODE_GROUP, [])]):
        if host_vars_path(host) not in files:
            problems.add(host_vars_path(host), "missing")


def _merged_vars(
    host: str,
    parsed: _Hosts,
    depth: Mapping[str, int],
    groups: Mapping[str, list[str]],
    docs: Mapping[str, Any],
) -> dict[str, Any]:
    """A host's variables merged in Ansible's order (see read_farm), plus inventory_hostname, group_names."""
    own = sorted(
        (g for g, hosts in groups.items() if g != "all" and host in hosts),
        key=lambda g: (depth.get(g, 1), g),
    )
    merged: dict[str, Any] = dict(parsed.group_vars.get("all", {}))
    for group in own:
        merged.update(parsed.group_vars.get(group, {}))
    merged.update(_file_vars(docs, ALL_VARS))
    for group in own:
        merged.update(_file_vars(docs, f"group_vars/{group}.yml"))
    merged.update(parsed.host_vars.get(host, {}))
    merged.update(_file_vars(docs, host_vars_path(host)))
    merged.update(inventory_hostname=host, group_names=[g for g in own if g != "ungrouped"])
    return merged


def check_tree(files: Mapping[str, str]) -> list[str]:
    """Every problem of an inventory's files: the files themselves (YAML, layout, leftovers), then
    `farm_problems` of the farm they describe; [] if fine."""
    loaded, problems = read_farm(files)
    return [one_line(line) for line in problems] + farm_problems(loaded.farm, loaded.groups, loaded.hostvars)
