"""Step-by-step pass/fail output shared by every check command."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Report:
    """Prints one line per step and remembers whether every step passed."""

    title: str
    echo: Callable[[str], None] = print
    failures: list[str] = field(default_factory=list)
    steps: int = 0
    #: How many steps a full run has: the summary says how many were not run after a failure.
    planned: int = 0

    def ok(self, name: str, detail: str = "") -> None:
        self._line("PASS", name, detail)

    def fail(self, name: str, detail: str) -> None:
        self.failures.append(name)
        self._line("FAIL", name, detail)

    def skip(self, name: str, detail: str) -> None:
        self._line("SKIP", name, detail)

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        if self.passed:
            line = f"{self.title}: all {self.steps} step(s) passed"
        else:
            line = (
                f"{self.title}: {len(self.failures)} of {self.steps} step(s) failed "
                f"({', '.join(self.failures)})"
            )
            if self.planned > self.steps:
                line += f"; {self.planned - self.steps} later step(s) not run"
        self.echo(line)
        return line

    def _line(self, status: str, name: str, detail: str) -> None:
        self.steps += 1
        lines = detail.rstrip("\n").splitlines() or [""]
        head = f"[{status}] {name}" + (f": {lines[0]}" if lines[0] else "")
        self.echo("\n".join([head, *("       " + line for line in lines[1:])]))
