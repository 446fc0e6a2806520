"""Option helpers and the warning line shared by the CLI's command modules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click


def path_option(*decls: str, kind: Literal["dir", "file"], help: str, **extra: Any) -> Callable[..., Any]:
    """A ``--x PATH`` option whose value is a :class:`Path` to a directory or to a file (None if not given).

    No explicit ``default=None``: click (8.3 and later) then counts the option as given, and
    ``required=True`` would let a missing value through as None.
    """
    path_type = click.Path(file_okay=kind == "file", dir_okay=kind == "dir", path_type=Path)
    return click.option(*decls, type=path_type, help=help, **extra)


def warn(message: str) -> None:
    """One warning line on stderr, as every svpn command writes them (after its work is done)."""
    click.echo(f"svpn: warning: {message}", err=True)
