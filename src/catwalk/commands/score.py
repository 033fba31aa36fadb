"""``catwalk score``: score a dataset (Parquet, CSV, JSON lines) locally, on Spark or on Ray."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from typing import Any

import click

from catwalk.commands.common import handle_errors, install_option, model_option, model_path_option
from catwalk.commands.progress import Progress


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
    from catwalk.spec import load_spec
    from catwalk.tracing.jobs import job_trace

    trace = job_trace("score", load_spec(model_path))  # OTEL_* variables; None: off
    with contextlib.redirect_stdout(sys.stderr), _sigterm_interrupts():
        progress = Progress("score", "row")

        def advance(rows: int) -> None:
            progress.advance(rows)
            if trace is not None:  # a span per chunk written
                trace.chunk_done(rows)

        error: BaseException | None = None
        try:
            summary = run_job(request, progress=advance, total=progress.start)
        except BaseException as exc:
            error = exc
            raise
        finally:
            progress.finish()
            if trace is not None:
                trace.close(error)
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


COMMANDS = [score_command]
