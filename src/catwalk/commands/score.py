"""``catwalk score``: score a dataset (Parquet, CSV, JSON lines) locally, on Spark or on Ray."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import click

from catwalk.commands.common import handle_errors, install_option, model_option, model_path_option

_REDRAW_SECONDS = 0.2
_REPORT_SECONDS = 10.0


@click.command("score")
@model_path_option
@model_option
@click.option(
    "--input",
    "inputs",
    multiple=True,
    required=True,
    help="A file, a folder of files or a glob (repeatable); a URI for Spark and Ray.",
)
@click.option(
    "--input-format",
    type=click.Choice(["parquet", "csv", "jsonl"]),
    default=None,
    help="The inputs' format (default: from their extension).",
)
@click.option("--output", required=True, help="The output folder (created when complete).")
@click.option(
    "--engine",
    type=click.Choice(["local", "spark", "ray"]),
    default="local",
    show_default=True,
    help="local: processes on this machine; spark: the active or a new SparkSession; "
    "ray: Ray Data on RAY_ADDRESS or a local instance.",
)
@click.option(
    "--format",
    "out_format",
    type=click.Choice(["parquet", "jsonl", "csv"]),
    default="parquet",
    show_default=True,
    help="The output files' format.",
)
@click.option(
    "--keep",
    multiple=True,
    help="An input column to copy to the output untouched (an id to join on; repeatable).",
)
@click.option(
    "--on-error",
    type=click.Choice(["record", "stop"]),
    default="record",
    show_default=True,
    help="A row that fails: record its error in catwalk_error (null outputs) and go on, or "
    "stop the job naming its file and row (no output is written).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Rows per model call (default: model.yml's batching.max_batch_size, else 32; "
    "models without batching are called row by row).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output (when complete).")
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes (local, default: the usable CPUs) or Ray actors (default: the "
    "cluster's CPUs). Spark uses its own settings.",
)
@click.option(
    "--ship-requirements",
    is_flag=True,
    help="ray: install the model's requirements.txt on the workers (runtime_env pip).",
)
@install_option
@handle_errors
def score_command(
    model_path: str,
    model: str | None,
    inputs: tuple[str, ...],
    input_format: str | None,
    output: str,
    engine: str,
    out_format: str,
    keep: tuple[str, ...],
    on_error: str,
    batch_size: int | None,
    overwrite: bool,
    concurrency: int | None,
    ship_requirements: bool,
    install: bool,
) -> None:
    """Score every row of --input with the model and write --output (a folder of files).

    Each row is checked against model.yml's schema.input, scored through the model's io type
    in batches and its output checked against schema.output, as POST /predict does. The
    output holds the --keep columns, one column per output field and catwalk_error (null
    where the row scored). Rows out = rows in. docs/scoring.md explains the engines.
    """
    from catwalk.repository.select import select_folder
    from catwalk.score.job import JobRequest, run_job

    model_path = str(select_folder(model_path, model))
    request = JobRequest(
        model_path=model_path,
        inputs=list(inputs),
        input_format=input_format,
        output=output,
        engine=engine,
        out_format=out_format,
        keep=keep,
        stop=on_error == "stop",
        batch_size=batch_size,
        overwrite=overwrite,
        concurrency=concurrency,
        ship_requirements=ship_requirements,
    )
    if install:
        from catwalk.requirements import ensure_requirements
        from catwalk.spec import load_spec

        click.echo(f"requirements: {ensure_requirements(load_spec(model_path).path)}", err=True)
    with contextlib.redirect_stdout(sys.stderr), _sigterm_interrupts():
        progress = Progress()
        try:
            summary = run_job(request, progress=progress.advance, total=progress.start)
        finally:
            progress.finish()
    click.echo(summary.line(), err=True)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM ends the job as Ctrl-C does: the temporary output is deleted on the way out."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Progress:
    """A bar on a terminal when the row count is known (a counter otherwise), else a line
    on stderr every ten seconds."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.started = self.shown = time.monotonic()
        self.bar: Any = None
        self.rows = 0
        self.pending = 0

    def start(self, total: int | None) -> None:
        if self.tty and total:
            self.bar = click.progressbar(length=total, label="scoring", file=sys.stderr)
            self.bar.render_progress()

    def advance(self, rows: int) -> None:
        self.rows += rows
        self.pending += rows
        now = time.monotonic()
        if now - self.shown < (_REDRAW_SECONDS if self.tty else _REPORT_SECONDS):
            return
        self.shown = now
        if self.bar is not None:
            self.bar.update(self.pending)
            self.pending = 0
        elif self.tty:
            click.echo(f"\rscoring: {self.rows} row(s)", err=True, nl=False)
        else:
            rate = self.rows / max(now - self.started, 1e-9)
            click.echo(f"score: {self.rows} row(s) so far ({rate:,.0f} rows/s)", err=True)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.update(self.pending)
            self.bar.render_finish()
        elif self.tty and self.rows:
            click.echo("\r", err=True, nl=False)


COMMANDS = [score_command]
