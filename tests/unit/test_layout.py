"""The package's layout keeps its architecture: imports only go down the layers, no circles, small modules.

Read from the sources (ast), so a new import that runs upward, a circle or an overgrown module fails here
with the file and the line, before anyone has to find it in a picture. docs/architecture.md draws the same
layers.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from svpn.farm.host_code import imported_by

PACKAGE = Path(__file__).resolve().parents[2] / "scripts" / "svpn"

# Each sub-package and the sub-packages it may import (besides itself). Lower layers never import higher.
MAY_IMPORT: dict[str, set[str]] = {
    "core": set(),
    "farm": {"core"},
    "planning": {"farm", "core"},
    "inventory": {"planning", "farm", "core"},
    "access": {"farm", "core"},
    "lab": {"access", "farm", "core"},
    "loadtest": {"lab", "access", "farm", "core"},
    "helpdesk": {"access", "farm", "core"},
    "report": {"helpdesk", "access", "inventory", "planning", "farm", "core"},
    "metrics": {"helpdesk", "farm", "core"},
    "cli": {"report", "helpdesk", "loadtest", "lab", "access", "inventory", "planning", "farm", "core"},
}
TOP_LEVEL = {"svpn", "svpn.__main__"}  # the package's face (version) and `python -m svpn`
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


@dataclass(frozen=True)
class Import:
    source: str  # importing module, dotted
    target: str  # imported module, dotted


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def all_imports() -> list[Import]:
    """Every svpn import of every module, read the way the LB role reads its checker's imports."""
    return [Import(name, target) for name in modules() for target in sorted(imported_by(name))]


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and module not in TOP_LEVEL else None


def test_every_sub_package_is_placed_in_a_layer() -> None:
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert packages == set(MAY_IMPORT), "add the new sub-package to MAY_IMPORT and to docs/architecture.md"


def test_imports_only_go_down_the_layers() -> None:
    wrong = []
    for imp in all_imports():
        src, dst = layer(imp.source), layer(imp.target)
        if imp.target == "svpn" or imp.source in TOP_LEVEL or src is None or dst is None or src == dst:
            continue
        if dst not in MAY_IMPORT[src]:
            wrong.append(f"{imp.source} imports {imp.target}: {src} may import {MAY_IMPORT[src]}")
    assert not wrong, "\n".join(wrong)


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the circles of *graph* (components of more than one node, or a self-loop)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def test_strongly_connected_finds_a_circle_and_only_circles() -> None:
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_another_in_a_circle() -> None:
    graph: dict[str, set[str]] = {}
    for imp in all_imports():
        if imp.target != imp.source and imp.target in modules():
            graph.setdefault(imp.source, set()).add(imp.target)
    assert strongly_connected(graph) == []


def test_the_product_does_not_ship_test_support() -> None:
    support = ("svpn_testing", "testinfra")
    users = [imp for imp in all_imports() if imp.target.startswith(support)]
    text_users = [
        str(p)
        for p in PACKAGE.rglob("*.py")
        if "svpn_testing" in p.read_text() or "testinfra" in p.read_text()
    ]
    assert not users and not text_users


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_and_functions_stay_small(name: str) -> None:
    path = modules()[name]
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path}: split it by concern"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or node.lineno) - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path}: split into named steps: {', '.join(long)}"
