"""commands/progress.py: what a long command says on stderr when stderr is a log."""

from __future__ import annotations

import pytest

from catwalk.commands.progress import Progress


def test_a_log_gets_a_line_every_ten_seconds_with_the_count_and_rate(
    capsys: pytest.CaptureFixture[str],
) -> None:
    progress = Progress("predict", "line")
    progress.start(1000)  # no bar: stderr is not a terminal here
    progress.advance(40, 1)
    assert capsys.readouterr().err == ""  # not ten seconds yet
    progress.shown -= 11
    progress.started -= 11
    progress.advance(60, 1)
    err = capsys.readouterr().err
    assert err.startswith("predict: 2 line(s) so far (")
    assert err.endswith(" lines/s)\n")
    progress.finish()
    assert capsys.readouterr().err == ""
    assert progress.done == 2


def test_units_default_to_the_step(capsys: pytest.CaptureFixture[str]) -> None:
    progress = Progress("score", "row")
    progress.advance(500)
    progress.advance(250)
    assert progress.done == 750
    assert progress.rate().endswith(" rows/s")
