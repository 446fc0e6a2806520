"""The commands the docs show are real: `svpn` commands parse, playbooks and make targets exist.

Every shell block (```sh) of README.md, docs/, the roles' and loadgen's READMEs is read; a line that starts
with `svpn`, `make` or `ansible-playbook` is checked without running it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from conftest import cli_commands

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted(
    [
        ROOT / "README.md",
        ROOT / "loadgen" / "README.md",
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "roles").glob("*/README.md"),
    ]
)
BLOCK = re.compile(r"^```(?:sh|bash|console)\n(.*?)^```", re.M | re.S)


def shell_commands(text: str) -> list[str]:
    """Commands in the shell blocks: continuation lines joined, comments and prompts dropped."""
    commands = []
    for block in BLOCK.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip().removeprefix("$ ").strip()
            line = re.sub(r"\s+#.*$", "", line)
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def _cases() -> list[tuple[str, str]]:
    cases = []
    for doc in DOCS:
        for command in shell_commands(doc.read_text(encoding="utf-8")):
            if command.split()[0] in ("svpn", "make", "ansible-playbook"):
                cases.append((str(doc.relative_to(ROOT)), command))
    return cases


CASES = _cases()


def test_the_docs_show_commands_at_all() -> None:
    tools = {command.split()[0] for _doc, command in CASES}
    assert tools == {"svpn", "make", "ansible-playbook"}, tools


def _check_svpn(argv: list[str]) -> None:
    commands = cli_commands()
    path = next((p for p in commands if tuple(argv[: len(p)]) == p), None)
    assert path is not None, f"no such command: svpn {' '.join(a for a in argv if not a.startswith('-'))}"
    command, parent = commands[path]
    # Optional parts shown in brackets ("[--legacy-p12]") are options like any other.
    rest = [arg.strip("[]") for arg in argv[len(path) :] if arg.strip("[]")]
    command.make_context(path[-1], rest, parent=parent)  # raises on unknown or missing options


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, re.M))


@pytest.mark.parametrize(("doc", "command"), CASES, ids=[f"{d}: {c[:60]}" for d, c in CASES])
def test_documented_command_is_real(doc: str, command: str) -> None:
    argv = shlex.split(command)
    tool, args = argv[0], argv[1:]
    if tool == "svpn":
        try:
            _check_svpn(args)
        except click.UsageError as err:
            pytest.fail(f"{doc}: `{command}`: {err.format_message()}")
    elif tool == "make":
        targets = [a for a in args if not a.startswith("-") and "=" not in a]
        assert set(targets) <= _make_targets(), f"{doc}: `{command}`: no such make target"
    else:
        playbooks = [a for a in args if a.endswith(".yml") and a.startswith("playbooks/")]
        assert playbooks, f"{doc}: `{command}` names no playbook"
        for playbook in playbooks:
            assert (ROOT / playbook).is_file(), f"{doc}: `{command}`: {playbook} does not exist"
