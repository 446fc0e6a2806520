"""The package files a farm host needs to run one module (the filter svpn_package_files): the LB's health
checker gets itself, what it imports and the packages' __init__.py, and nothing Debian's python3 lacks."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from svpn.core.errors import SvpnError
from svpn.farm import host_code
from svpn.farm.host_code import imported_by, needed_modules, package_files

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def test_the_health_checker_ships_with_what_it_imports() -> None:
    files = package_files("svpn.farm.lbhealth")
    assert [f["path"] for f in files] == [
        "svpn/__init__.py",
        "svpn/core/__init__.py",
        "svpn/core/errors.py",
        "svpn/core/files.py",
        "svpn/farm/__init__.py",
        "svpn/farm/buckets.py",
        "svpn/farm/facts.py",
        "svpn/farm/lbhealth.py",
    ]
    assert all(f["content"] == (SCRIPTS / f["path"]).read_text() for f in files)


def test_the_health_checker_needs_only_the_standard_library_besides_svpn() -> None:
    outside = set()
    for module in needed_modules("svpn.farm.lbhealth"):
        tree = ast.parse(host_code.source_of(module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                outside |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                outside.add(node.module.split(".")[0])
    assert outside - {"svpn"} <= set(sys.stdlib_module_names)


def test_imports_are_followed_through_from_imports_and_packages() -> None:
    assert imported_by("svpn.farm.buckets") == {"svpn.core.errors"}
    assert "svpn.farm.lbhash" in needed_modules("svpn.farm.role_facts")
    assert needed_modules("svpn.farm") == ["svpn", "svpn.farm"]


def test_relative_imports_are_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "svpn"
    (package / "farm").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "farm" / "__init__.py").write_text("from . import a\n")
    (package / "farm" / "a.py").write_text("from .b import f\nfrom .. import core\n")
    (package / "farm" / "b.py").write_text("import json\n")
    (package / "core.py").write_text("")
    monkeypatch.setattr(host_code, "PACKAGE_DIR", package)
    assert imported_by("svpn.farm") == {"svpn.farm.a"}
    assert imported_by("svpn.farm.a") == {"svpn.farm.b", "svpn.core"}
    assert needed_modules("svpn.farm.a") == ["svpn", "svpn.core", "svpn.farm", "svpn.farm.a", "svpn.farm.b"]


def test_an_unknown_module_is_refused() -> None:
    with pytest.raises(SvpnError, match=r"'svpn\.farm\.nothing': no svpn/farm/nothing\.py"):
        package_files("svpn.farm.nothing")
    with pytest.raises(SvpnError, match="not a module of the svpn package"):
        package_files("json")
