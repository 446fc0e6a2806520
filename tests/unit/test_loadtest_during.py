"""svpn.loadtest.during: a command run under load, the users counted through it (no containers: the
nodes are stand-in callables, the command a real shell command)."""

from __future__ import annotations

import time
from pathlib import Path

from svpn.loadtest.during import during, restarted


def test_restarted_finds_new_pids_not_stopped_nodes() -> None:
    assert restarted({"a": 10, "b": 20, "c": 30}, {"a": 10, "b": 21, "c": 0}) == ["b"]
    assert restarted({"a": 10}, {"a": 10, "d": 5}) == ["d"]


class _Farm:
    """Two nodes: 'b' restarts while the command runs (its users drop, then come back on 'a')."""

    def __init__(self) -> None:
        self.pid = {"a": 100, "b": 200}
        self.users = {"a": 5, "b": 5}
        self.reloads: list[str] = []
        self.fail_reloads = 0

    def counter(self) -> dict[str, set[str]]:
        # b's old SAs linger while its users are already up on a: still 10 users, not 15
        ids = {name: {f"u{i}" for i in range(n)} for name, n in self.users.items()}
        if self.users["b"] == 0:
            ids["b"] = {f"u{i}" for i in range(5)}
        return ids

    def exact(self) -> dict[str, int]:
        return dict(self.users)

    def pids(self) -> dict[str, int]:
        return dict(self.pid)

    def reload(self, name: str) -> None:
        if self.fail_reloads:
            self.fail_reloads -= 1
            from svpn.core.errors import SvpnError

            raise SvpnError("vici socket not there yet")
        self.reloads.append(name)


def _run(farm: _Farm, command: str, tmp_path: Path, settle: float = 5.0) -> dict:
    return during(
        command, 10, farm.counter, farm.exact, farm.pids, farm.reload, settle=settle,
        deadline=time.monotonic() + 30, output=tmp_path / "during.log",
        progress=lambda *a: None, log=lambda m: None,
    )  # fmt: skip


def test_a_restarted_node_is_reloaded_and_the_users_are_counted_through(tmp_path: Path) -> None:
    farm = _Farm()
    marker = tmp_path / "restart"

    def pids() -> dict[str, int]:
        if marker.exists():  # the command "restarted" b: its users moved to a
            farm.pid["b"] = 201
            farm.users = {"a": 10, "b": 0}
        return dict(farm.pid)

    farm.pids = pids  # type: ignore[method-assign]
    farm.fail_reloads = 1  # the first try finds charon not answering yet
    report = _run(farm, f"sleep 1.5; touch {marker}; sleep 2.5; echo upgraded", tmp_path)
    assert report["exit_code"] == 0
    assert "upgraded" in (tmp_path / "during.log").read_text()
    assert farm.reloads == ["b"]
    assert report["reloaded"] == {"b": 1} and report["reload_errors"] == {}
    assert report["users_before"] == 10 and report["users_after"] == 10
    assert report["all_back_s"] is not None
    # a user counted once, also while a drained node still holds its old SA
    assert max(up for _, up in report["timeline"]) == 10


def test_users_that_do_not_come_back_and_a_failing_command_are_reported(tmp_path: Path) -> None:
    from svpn.loadtest.summary import during_problems

    farm = _Farm()
    lost = tmp_path / "lost"

    def exact() -> dict[str, int]:
        return {"a": 5, "b": 2} if lost.exists() else {"a": 5, "b": 5}

    farm.exact = exact  # type: ignore[method-assign]
    report = _run(farm, f"touch {lost}; exit 3", tmp_path, settle=0.5)
    found = during_problems(report)
    assert report["exit_code"] == 3 and report["users_after"] == 7 and report["all_back_s"] is None
    assert any("exited 3" in f for f in found)
    assert any("7 of 10 users back" in f for f in found)
