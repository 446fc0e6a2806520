"""The CLI as a whole: every command reachable, every required option enforced by click itself."""

from __future__ import annotations

import click
import pytest
from conftest import cli_commands

COMMANDS = cli_commands()


def test_every_command_group_is_registered() -> None:
    top = {path[0] for path in COMMANDS}
    expected = {"pki", "lab", "plan", "inventory", "users", "profiles", "loadtest"}
    expected |= {"status", "whereis", "explain", "helpdesk"}
    assert expected <= top, top


REQUIRING = [path for path, (command, _ctx) in COMMANDS.items() if any(p.required for p in command.params)]


@pytest.mark.parametrize("path", REQUIRING, ids=" ".join)
def test_a_missing_required_parameter_is_a_usage_error(path: tuple[str, ...]) -> None:
    command, parent = COMMANDS[path]
    with pytest.raises(click.MissingParameter):
        command.make_context(path[-1], [], parent=parent)
