"""What every step of a load test is handed: where to log, where to report progress, and the undo stack.

Every step that changes something pushes its undo onto the stack first, and the stack runs in reverse
whatever happens (an error, Ctrl-C, the time bound), so a run leaves the lab as it found it. Imports nothing
of svpn.
"""

from __future__ import annotations

from collections.abc import Callable

Log = Callable[[str], None]
# progress(phase, done, total, up, failed): called a few times a second while users are set up
ProgressFn = Callable[[str, int, int, int, int], None]


class Undo:
    """A stack of clean-up steps, run in reverse; a failing step is logged and the rest still run."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self.steps: list[tuple[str, Callable[[], None]]] = []

    def push(self, what: str, step: Callable[[], None]) -> None:
        self.steps.append((what, step))

    def run(self) -> list[str]:
        errors = []
        while self.steps:
            what, step = self.steps.pop()
            try:
                step()
            except Exception as err:
                errors.append(f"{what}: {err}")
                self.log(f"clean-up step failed: {what}: {err}")
        return errors
