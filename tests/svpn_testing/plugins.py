"""The project's Ansible filter plugin, loaded the way Ansible loads it (from its file, not as a package)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "filter" / "svpn_farm.py"


def farm_filters() -> dict[str, Callable[..., Any]]:
    """Every filter plugins/filter/svpn_farm.py offers, by name."""
    spec = importlib.util.spec_from_file_location("svpn_farm_filter", PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.FilterModule().filters())
