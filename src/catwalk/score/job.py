"""One ``catwalk score`` job: the request, checked once on the driver, run on an engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from catwalk import DISTRIBUTION
from catwalk.errors import CatwalkError
from catwalk.score.columns import ColumnPlan
from catwalk.score.inputs import resolve
from catwalk.score.output import OutputDir, arrow_store
from catwalk.score.summary import Summary
from catwalk.score.worker import ScoreJob


@dataclass(frozen=True)
class JobRequest:
    """What the command line asked for."""

    model_path: str
    inputs: list[str]
    output: str
    input_format: str | None = None
    engine: str = "local"
    out_format: str = "parquet"
    keep: tuple[str, ...] = ()
    stop: bool = False
    batch_size: int | None = None
    overwrite: bool = False
    concurrency: int | None = None
    ship_requirements: bool = False


# The package each engine needs, and the extra that installs it.
ENGINE_MODULES = {"spark": ("pyspark", "spark"), "ray": ("ray", "ray")}


class MissingExtra(CatwalkError):
    """An engine's package is not installed (it comes with an extra, not the base install)."""


def need(module: str, extra: str) -> None:
    """MissingExtra naming the pip command when ``module`` cannot be imported."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingExtra(
            f"catwalk score needs {module}, which is not installed: "
            f"pip install '{DISTRIBUTION}[{extra}]'"
        )


def run_job(
    request: JobRequest,
    *,
    progress: Callable[[int], None] | None = None,
    total: Callable[[int | None], None] | None = None,
) -> Summary:
    """Score the request's inputs into its output on its engine; the job's summary."""
    need("pyarrow", f"spark' or '{DISTRIBUTION}[ray]")
    if request.engine in ENGINE_MODULES:
        need(*ENGINE_MODULES[request.engine])
    from catwalk.spec import load_spec

    spec = load_spec(request.model_path)
    inputs = resolve(request.inputs, request.input_format)
    plan = ColumnPlan.for_model(spec, request.keep, flat=request.out_format == "csv")
    job = ScoreJob(
        model_dir=str(Path(spec.path).resolve()),
        keep=tuple(request.keep),
        mode=inputs.mode,
        batch_size=request.batch_size,
        stop=request.stop,
        flat=plan.flat,
    )
    if request.engine == "spark":
        from catwalk.score.engines.spark import score_files_spark

        return score_files_spark(
            job, plan, inputs, request.output, request.out_format, overwrite=request.overwrite
        )
    if request.engine == "ray":
        from catwalk.score.engines.ray import score_files_ray

        return score_files_ray(
            job,
            plan,
            inputs,
            request.output,
            request.out_format,
            overwrite=request.overwrite,
            concurrency=request.concurrency,
            ship_requirements=request.ship_requirements,
        )
    if not inputs.files:
        raise CatwalkError("--engine local reads local files only; use spark or ray for URIs")
    from catwalk.cpus import usable_cpus
    from catwalk.score.engines.local import LocalEngine

    store, path, prefix = arrow_store(request.output)
    engine = LocalEngine(
        job,
        plan,
        inputs,
        OutputDir(store, path, overwrite=request.overwrite, prefix=prefix),
        out_format=request.out_format,
        workers=request.concurrency or usable_cpus(),
        progress=progress,
    )
    if total is not None:
        total(engine.total_rows())
    return engine.run()
