"""Step-by-step pass/fail output shared by every check command.

Besides printing, a :class:`Report` keeps every step (status, name, detail, duration) and the
text printed after it (a server's or container's log), so the same run can also be written
for a CI system (:mod:`catwalk.checks.junit`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["PASS", "FAIL", "SKIP", "ERROR"]


@dataclass
class Step:
    """One step as it ran: ``output`` is what was printed after its line, before the next."""

    status: Status
    name: str
    detail: str
    seconds: float
    output: list[str] = field(default_factory=list)


@dataclass
class Report:
    """Prints one line per step and remembers whether every step passed."""

    title: str
    echo: Callable[[str], None] = print
    failures: list[str] = field(default_factory=list)
    steps: int = 0
    records: list[Step] = field(default_factory=list)
    # The steps this check runs when nothing fails, in order: those never reached are
    # reported as skipped to a CI system (never printed: the console shows what ran).
    planned: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.started = self._last = time.monotonic()
        printer = self.echo

        def echo(text: str) -> None:
            printer(text)
            if self.records:
                self.records[-1].output.append(text)

        self._print = printer
        self.echo = echo  # text printed between steps belongs to the step before it

    def ok(self, name: str, detail: str = "") -> None:
        self._line("PASS", name, detail)

    def fail(self, name: str, detail: str) -> None:
        self.failures.append(name)
        self._line("FAIL", name, detail)

    def skip(self, name: str, detail: str) -> None:
        self._line("SKIP", name, detail)

    def error(self, message: str) -> None:
        """Record that the check could not go on (an error ended the command); not printed."""
        self._record("ERROR", "catwalk error", message)

    @property
    def passed(self) -> bool:
        return not self.failures

    def not_reached(self) -> list[str]:
        """The planned steps that neither ran nor were skipped (an earlier one failed)."""
        seen = {step.name for step in self.records}
        return [name for name in self.planned if name not in seen]

    def summary(self) -> str:
        if self.passed:
            line = f"{self.title}: all {self.steps} step(s) passed"
        else:
            line = (
                f"{self.title}: {len(self.failures)} of {self.steps} step(s) failed "
                f"({', '.join(self.failures)})"
            )
            not_run = self.not_reached()
            if not_run:
                line += f"; {len(not_run)} later step(s) not run"
        self._print(line)
        return line

    def _line(self, status: Status, name: str, detail: str) -> None:
        self.steps += 1
        lines = detail.rstrip("\n").splitlines() or [""]
        head = f"[{status}] {name}" + (f": {lines[0]}" if lines[0] else "")
        self._print("\n".join([head, *("       " + line for line in lines[1:])]))
        self._record(status, name, detail)

    def _record(self, status: Status, name: str, detail: str) -> None:
        now = time.monotonic()
        self.records.append(Step(status, name, detail.rstrip("\n"), now - self._last))
        self._last = now
