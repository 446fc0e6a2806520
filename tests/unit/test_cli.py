"""The CLI as a whole: every command reachable, every required option enforced by click itself."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest

from svpn.cli import _register, cli


def _commands() -> Iterator[tuple[str, click.Command, click.Context]]:
    _register()
    root = click.Context(cli, info_name="svpn")
    stack: list[tuple[click.Group, click.Context]] = [(cli, root)]
    while stack:
        group, ctx = stack.pop()
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            path = f"{ctx.command_path} {name}"
            if isinstance(command, click.Group):
                stack.append((command, click.Context(command, info_name=name, parent=ctx)))
            else:
                yield path, command, ctx


COMMANDS = list(_commands())


def test_every_command_group_is_registered() -> None:
    top = {path.split()[1] for path, _c, _x in COMMANDS}
    assert {"pki", "lab", "plan", "inventory", "users", "profiles", "loadtest"} <= top, top


REQUIRING = [c for c in COMMANDS if any(p.required for p in c[1].params)]


@pytest.mark.parametrize(("path", "command", "parent"), REQUIRING, ids=[c[0] for c in REQUIRING])
def test_a_missing_required_parameter_is_a_usage_error(
    path: str, command: click.Command, parent: click.Context
) -> None:
    with pytest.raises(click.MissingParameter):
        command.make_context(path.split()[-1], [], parent=parent)
