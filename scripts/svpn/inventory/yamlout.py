"""A small deterministic YAML writer of our own: every inventory file comes out the same for the same plan,
and every derived number carries a comment saying how it was derived. The tests load each file with
``yaml.safe_load`` and compare it with the data the writer was given.

Imports nothing of svpn.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

COMMENT_WIDTH = 108


@dataclass(frozen=True)
class Entry:
    """One mapping key: a scalar, a list of scalars, a nested mapping (a tuple of Entry) or {} (empty)."""

    key: str
    value: Any
    comment: str = ""


@dataclass(frozen=True)
class Vaulted:
    """A value encrypted with ``ansible-vault encrypt_string`` (YAML tag ``!vault``), kept as its ciphertext:
    a file the planner rewrites carries it over still encrypted, never decrypted."""

    ciphertext: str


_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:+@-]*$")


def yaml_scalar(value: Any) -> str:
    """A scalar that yaml.safe_load reads back as the same value and type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        text = yaml.safe_dump(value).removesuffix("\n...\n").strip()
        return text
    if isinstance(value, str):
        if _PLAIN.match(value) and yaml.safe_load(value) == value:
            return value
        # JSON strings are YAML double-quoted scalars; escape what YAML may not hold raw (DEL, C1 controls,
        # its extra line breaks NEL/LS/PS, BOM) with the \u escapes both languages share.
        quoted = json.dumps(value, ensure_ascii=False)
        return _UNSAFE_IN_YAML.sub(lambda m: f"\\u{ord(m.group()):04x}", quoted)
    raise TypeError(f"no YAML scalar for {value!r}")


_UNSAFE_IN_YAML = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")


def _comment_lines(text: str, indent: int) -> list[str]:
    pad = " " * indent
    lines = []
    for paragraph in text.split("\n"):
        wrapped = textwrap.wrap(paragraph, width=COMMENT_WIDTH - indent, break_on_hyphens=False) or [""]
        lines += [f"{pad}# {line}".rstrip() for line in wrapped]
    return lines


def _emit(entries: Sequence[Entry], indent: int) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    for entry in entries:
        if entry.comment:
            lines += _comment_lines(entry.comment, indent)
        value = entry.value
        key = yaml_scalar(entry.key)
        if isinstance(value, tuple):
            lines.append(f"{pad}{key}:")
            lines += _emit(value, indent + 2)
        elif isinstance(value, dict):
            if value:
                raise TypeError("nested mappings are tuples of Entry")
            lines.append(f"{pad}{key}: {{}}")
        elif isinstance(value, list):
            if not value:
                lines.append(f"{pad}{key}: []")
            else:
                lines.append(f"{pad}{key}:")
                lines += [f"{pad}  - {yaml_scalar(item)}" for item in value]
        elif isinstance(value, Vaulted):
            lines.append(f"{pad}{key}: !vault |")
            lines += [f"{pad}  {part}" for part in value.ciphertext.strip().splitlines()]
        else:
            lines += _scalar_lines(pad, key, entry.key, value)
    return lines


def _scalar_lines(pad: str, key: str, raw_key: str, value: Any) -> list[str]:
    """``key: value``; a long string becomes a folded block so every line stays within the width."""
    line = f"{pad}{key}: {yaml_scalar(value)}"
    if len(line) <= COMMENT_WIDTH or not isinstance(value, str) or not value.isprintable():
        return [line]  # short, or holding characters only a quoted scalar can escape
    body = textwrap.wrap(value, width=COMMENT_WIDTH - len(pad) - 2, break_on_hyphens=False)
    folded = [f"{pad}{key}: >-", *(f"{pad}  {part}" for part in body)]
    try:
        if yaml.safe_load("\n".join(folded)) == {raw_key: value}:
            return folded
    except yaml.YAMLError:
        pass
    return [line]  # spacing or text that folding would change: keep it exact on one line


def emit_yaml(header: Sequence[str], entries: Sequence[Entry], intro: str = "") -> str:
    """A YAML document: header comments, ``---``, an optional intro comment, the entries."""
    lines = [*header, "---"]
    if intro:
        lines += _comment_lines(intro, 0)
    lines += _emit(entries, 0)
    return "\n".join(lines) + "\n"


def entries_data(entries: Sequence[Entry]) -> dict[str, Any]:
    """The data the entries describe (what yaml.safe_load of the emitted text returns)."""
    return {
        entry.key: entries_data(entry.value) if isinstance(entry.value, tuple) else entry.value
        for entry in entries
    }
