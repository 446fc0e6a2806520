"""Read ansible-playbook's PLAY RECAP: what a run changed, host by host (pure; `svpn lab bench-scale` and
the scale scenario use it)."""

from __future__ import annotations

import re

_LINE = re.compile(r"^(\S+)\s+:\s+(ok=\d+.*)$", re.M)
_FIELD = re.compile(r"(\w+)=(\d+)")


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """{host: {"ok": n, "changed": n, "failed": n, ...}} from a playbook's output (the last recap wins)."""
    recap: dict[str, dict[str, int]] = {}
    for host, fields in _LINE.findall(output):
        recap[host] = {key: int(value) for key, value in _FIELD.findall(fields)}
    return recap


def changed_hosts(recap: dict[str, dict[str, int]], among: list[str]) -> list[str]:
    return sorted(host for host in among if recap.get(host, {}).get("changed", 0))
