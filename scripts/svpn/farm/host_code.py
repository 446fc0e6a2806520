"""The package's own source files a farm host needs to run one of its modules, for roles that copy them.

The loadbalancer role installs the health checker (:mod:`svpn.farm.lbhealth`) on the LB hosts with the
filter ``svpn_package_files``: the module, every svpn module it imports (transitively, read with ast, not
imported) and the ``__init__.py`` of each package on the way, so the host runs exactly the code the CLI runs
and the role lists no files by hand. Pure (it reads the package's files); imports only svpn.core.
"""

from __future__ import annotations

import ast
from pathlib import Path

from svpn.core.errors import SvpnError

PACKAGE = "svpn"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def source_of(module: str) -> Path:
    """The file of an svpn module or package (``svpn.farm`` -> ``svpn/farm/__init__.py``)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        raise SvpnError(f"module {module!r}: not a module of the {PACKAGE} package")
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    raise SvpnError(f"module {module!r}: no {base.relative_to(PACKAGE_DIR.parent)}.py in the package")


def is_module(module: str) -> bool:
    try:
        source_of(module)
    except SvpnError:
        return False
    return True


def imported_by(module: str) -> set[str]:
    """The svpn modules *module* imports (``from svpn.x import y`` counts svpn.x.y when that is a module)."""
    path = source_of(module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base.split(".")[0] == PACKAGE:
                subs = {f"{base}.{alias.name}" for alias in node.names} if base else set()
                found |= {sub for sub in subs if is_module(sub)} or {base}
    return found


def with_packages(module: str) -> list[str]:
    """*module* and every package above it (``svpn.farm.x`` -> svpn, svpn.farm, svpn.farm.x)."""
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]


def needed_modules(module: str) -> list[str]:
    """*module*, what it imports, transitively, and the packages above each: what Python loads to run it."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for name in with_packages(todo.pop()):
            if name not in seen:
                seen.add(name)
                todo.extend(imported_by(name))
    return sorted(seen)


def package_files(module: str) -> list[dict[str, str]]:
    """``{"path", "content"}`` of each file :func:`needed_modules` names, the path relative to the directory
    that holds the package (``svpn/farm/lbhealth.py``): put that directory on the host's ``sys.path``."""
    files = []
    for name in needed_modules(module):
        path = source_of(name)
        files.append({"path": path.relative_to(PACKAGE_DIR.parent).as_posix(), "content": path.read_text()})
    return sorted(files, key=lambda f: f["path"])


def distribution_files(distribution: str) -> list[dict[str, str]]:
    """``{"path", "content"}`` of the Python files of an installed distribution (a PyPI package the host's
    distribution does not package, e.g. ``vici``), the path relative to its site directory: put that
    directory on the host's ``sys.path``. Only pure-Python packages qualify."""
    from importlib import metadata

    try:
        files = metadata.files(distribution)
    except metadata.PackageNotFoundError:
        raise SvpnError(f"distribution {distribution!r}: not installed beside the svpn package") from None
    found = []
    for file in files or []:
        path = file.as_posix()
        if ".dist-info/" in path or "__pycache__" in path or path.startswith(".."):
            continue
        if not path.endswith(".py"):
            raise SvpnError(f"distribution {distribution!r}: {path} is not pure Python; cannot ship it")
        found.append({"path": path, "content": file.read_text()})
    if not found:
        raise SvpnError(f"distribution {distribution!r}: no Python files recorded")
    return sorted(found, key=lambda f: f["path"])
