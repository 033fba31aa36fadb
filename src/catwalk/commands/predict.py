"""``catwalk predict``: score one input, or JSON lines, with the model loaded as the server does."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from typing import IO, TYPE_CHECKING

import click

from catwalk.commands.common import (
    handle_errors,
    in_model_env,
    install_option,
    model_option,
    model_path_option,
)
from catwalk.commands.progress import Progress

if TYPE_CHECKING:
    from collections.abc import Iterable

    from catwalk.model import LoadedModel
    from catwalk.scoring import Scored, Scorer
    from catwalk.tracing.jobs import JobTrace

EXIT_LINE_FAILED = 1


@click.command("predict")
@model_path_option
@model_option
@click.option(
    "--input",
    "input_json",
    default=None,
    help='One input as JSON (what a request\'s "input" holds); its output is printed.',
)
@click.option(
    "--input-file",
    type=click.File("rb"),
    default=None,
    help="JSON lines to score, one input per line ('-' = stdin, the default).",
)
@click.option(
    "--output",
    "output_file",
    type=click.File("wb"),
    default="-",
    help="Write the outputs here instead of stdout.",
)
@click.option(
    "--on-error",
    type=click.Choice(["stop", "skip"]),
    default="stop",
    show_default=True,
    help="A bad line: stop there (exit 1), or skip it (its output line is null) and go on.",
)
@install_option
@handle_errors
@in_model_env
def predict_command(
    model_path: str,
    model: str | None,
    input_json: str | None,
    input_file: IO[bytes] | None,
    output_file: IO[bytes],
    on_error: str,
    install: bool,
) -> None:
    """Print the model's output for --input, or for each JSON line of stdin / --input-file.

    The model is loaded as `catwalk serve` loads it (requirements, io type) and every input
    and output is validated against model.yml's schema. Output line N belongs to input line N;
    problems go to stderr as "line N: <problem>". The model's own prints go to stderr too.
    """
    from catwalk.scoring import Scorer

    if input_json is not None and input_file is not None:
        raise click.UsageError("give --input or --input-file, not both")
    with contextlib.redirect_stdout(sys.stderr):  # a print() in the model cannot mix in
        from catwalk.repository.select import select_folder

        scorer = Scorer(_load(str(select_folder(model_path, model)), install))
        if input_json is not None:
            output_file.write(scorer.score_bytes(input_json.encode("utf-8")) + b"\n")
            return
        source = input_file or click.open_file("-", "rb")
        if source.isatty():
            click.echo("reading JSON lines from the terminal (Ctrl-D ends)", err=True)
        from catwalk.tracing.jobs import job_trace

        trace = job_trace("predict", scorer.model.spec)  # OTEL_* variables; None: off
        error: BaseException | None = None
        try:
            failed = _score_lines(scorer, source, output_file, stop=on_error == "stop", trace=trace)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if trace is not None:
                trace.close(error)
    if failed and on_error == "stop":
        sys.exit(EXIT_LINE_FAILED)


def _load(model_path: str, install: bool) -> LoadedModel:
    from catwalk.model import load_model
    from catwalk.requirements import ensure_requirements
    from catwalk.spec import load_spec

    spec = load_spec(model_path)
    if install:
        click.echo(f"requirements: {ensure_requirements(spec.path)}", err=True)
    return load_model(spec)


def _score_lines(
    scorer: Scorer, source: IO[bytes], out: IO[bytes], *, stop: bool, trace: JobTrace | None
) -> int:
    """Write each line's output (null for a skipped one); return how many lines failed."""
    progress = Progress("predict", "line")
    progress.start(_size(source))
    failed = 0
    counted = _Counted(source, progress)
    results: Iterable[Scored] = scorer.score_lines(counted)
    if trace is not None:  # a span per chunk of lines
        from catwalk.tracing.jobs import chunked

        results = chunked(results, trace, lambda scored: scored.output is None)
    try:
        for scored in results:
            if scored.output is not None:
                out.write(scored.output + b"\n")
                continue
            failed += 1
            _report(scored, details=stop)
            if stop:
                break
            out.write(b"null\n")
    finally:
        out.flush()
        progress.finish()
        _summary(progress, failed)
    return failed


def _report(scored: Scored, *, details: bool) -> None:
    click.echo(f"line {scored.line}: {scored.error}", err=True)
    trace = getattr(scored.error, "details", "")
    if details and trace:
        click.echo(trace.rstrip(), err=True)


def _size(source: IO[bytes]) -> int | None:
    """The byte size of a regular file being read from its start; None for a pipe."""
    try:
        info = os.fstat(source.fileno())
        position = source.tell()
    except (OSError, ValueError, AttributeError):
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return max(info.st_size - position, 0)


class _Counted:
    """Iterates a binary stream's lines, telling the progress display how far it is."""

    def __init__(self, source: IO[bytes], progress: Progress) -> None:
        self.source = source
        self.progress = progress

    def __iter__(self) -> _Counted:
        return self

    def __next__(self) -> bytes:
        line = self.source.readline()
        if not line:
            raise StopIteration
        self.progress.advance(len(line), 1)
        return line


def _summary(progress: Progress, failed: int) -> None:
    failures = f", {failed} failed" if failed else ""
    click.echo(
        f"predict: {progress.done} line(s) read{failures} in {progress.seconds():.1f}s "
        f"({progress.rate()})",
        err=True,
    )


COMMANDS = [predict_command]
