"""Progress of a long command on stderr (``catwalk predict`` on JSON lines, ``catwalk score``).

A bar on a terminal when the total is known, a counter on a terminal when it is not, and a
line every ten seconds when stderr is a log: a job in CI shows it is alive without flooding it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

_REDRAW_SECONDS = 0.2  # a terminal's progress line
_REPORT_SECONDS = 10.0  # a log's progress line (stderr not a terminal)


class Progress:
    """One command's progress in ``unit``s (lines, rows), its bar in bytes or in units;
    ``finish`` closes the bar (the command prints its own summary)."""

    def __init__(self, command: str, unit: str) -> None:
        self.command = command
        self.unit = unit
        self.tty = sys.stderr.isatty()
        self.started = self.shown = time.monotonic()
        self.bar: Any = None
        self.pending = 0
        self.done = 0
        self.drawn = False

    def start(self, total: int | None) -> None:
        """The bar's length, once known (None: a counter)."""
        if self.tty and total:
            self.bar = click.progressbar(length=total, label="scoring", file=sys.stderr)
            self.bar.render_progress()

    def advance(self, step: int, units: int | None = None) -> None:
        """``step`` along the bar, ``units`` more done (as many as the step when not given)."""
        self.pending += step
        self.done += step if units is None else units
        done = self.done
        now = time.monotonic()
        if now - self.shown < (_REDRAW_SECONDS if self.tty else _REPORT_SECONDS):
            return
        self.shown = now
        if self.bar is not None:
            self.bar.update(self.pending)
            self.pending = 0
        elif self.tty:
            self.drawn = True
            click.echo(f"\rscoring: {done} {self.unit}(s)", err=True, nl=False)
        else:
            click.echo(f"{self.command}: {done} {self.unit}(s) so far ({self.rate()})", err=True)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.update(self.pending)
            self.bar.render_finish()
        elif self.drawn:
            click.echo("\r", err=True, nl=False)

    def seconds(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> str:
        took = self.seconds()
        return f"{self.done / took:,.0f} {self.unit}s/s" if took > 0 else "-"
