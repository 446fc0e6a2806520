"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
import pytest

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``svpn.cli.main(argv)`` in this process: (exit code, stdout, stderr)."""
    from svpn.cli import main

    def _run(*argv: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(arg) for arg in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def cli_commands() -> dict[tuple[str, ...], tuple[click.Command, click.Context]]:
    """Every leaf command of `svpn` by its path ("users", "sync"), with its parent's bare context (nothing
    parsed, nothing lenient: ``command.make_context(name, argv, parent=ctx)`` checks argv as svpn would)."""
    from svpn.cli import _register, cli

    _register()  # as svpn.cli.main does (adding a command twice is harmless)
    found = {}
    stack: list[tuple[tuple[str, ...], click.Group, click.Context]] = [
        ((), cli, click.Context(cli, info_name="svpn"))
    ]
    while stack:
        path, group, ctx = stack.pop()
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            if isinstance(command, click.Group):
                stack.append(((*path, name), command, click.Context(command, info_name=name, parent=ctx)))
            else:
                found[(*path, name)] = (command, ctx)
    return found
