"""The Ray engine: Ray Data ``map_batches`` with a callable class, one model per actor.

``ray.init()`` joins ``RAY_ADDRESS`` when it is set, else starts a local instance on the
usable CPUs. The model folder travels to the actors through the object store (zipped once by
the driver, unpacked once per machine), so it works on a cluster that does not share the
driver's files and under a ``ray.init`` made by the caller; with ``ship_requirements`` the
model's requirements.txt becomes the actors' ``runtime_env`` ``pip`` field. Each actor of the
pool (``concurrency``, default the cluster's CPUs) loads the model once in its constructor
and scores Arrow batches. The actors share the CPUs with the read and write tasks (each asks
for less than one CPU when the cluster is small), so a 2-CPU machine does not stall. A small
tally actor counts rows, rows with errors and model loads for the summary.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from catwalk.errors import CatwalkError
from catwalk.score.columns import ColumnPlan
from catwalk.score.inputs import Inputs, csv_column_types
from catwalk.score.output import OutputDir, arrow_store
from catwalk.score.rows import LINE_COLUMN
from catwalk.score.summary import Summary
from catwalk.score.worker import (
    WORKERS,
    ScoreJob,
    WorkerFailed,
    pack_folder,
    unpack_folder,
    unwrap,
)

BATCH_ROWS = 10_000  # rows per map_batches call (as Spark's Arrow batches)


def init() -> None:
    """Join RAY_ADDRESS, or start a local Ray on this machine's usable CPUs."""
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
        return
    from catwalk.cpus import usable_cpus

    ray.init(num_cpus=usable_cpus(), include_dashboard=False)


class Tally:
    """Counts of the job, kept in one small actor (``ray.remote(Tally)``)."""

    def __init__(self) -> None:
        self.rows = 0
        self.errors = 0
        self.loads = 0

    def add(self, rows: int, errors: int, loads: int) -> None:
        self.rows += rows
        self.errors += errors
        self.loads += loads

    def totals(self) -> tuple[int, int, int]:
        return self.rows, self.errors, self.loads


class ScoreBatches:
    """The callable class of ``map_batches``: the model loaded once, in the constructor."""

    def __init__(self, job: ScoreJob, tally: Any, folder: Any) -> None:
        import ray

        self.tally = tally
        name = Path(job.model_dir).name
        self.scorer, loaded = WORKERS.scorer(job, lambda: unpack_folder(ray.get(folder), name))
        tally.add.remote(0, 0, int(loaded))

    def __call__(self, batch: pa.Table) -> pa.Table:
        try:
            out, counts = self.scorer.score(_one_batch(batch))
        except CatwalkError as exc:
            raise WorkerFailed(str(exc)) from None
        self.tally.add.remote(counts.rows, counts.errors, 0)
        return pa.Table.from_batches([out])


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    batches = table.combine_chunks().to_batches()
    if not batches:
        return pa.RecordBatch.from_pylist([], schema=table.schema)
    return batches[0]


class RayScoring:
    """One model over Ray Datasets, with the tally of the job."""

    def __init__(
        self,
        job: ScoreJob,
        plan: ColumnPlan,
        *,
        concurrency: int | None = None,
        ship_requirements: bool = False,
    ) -> None:
        import ray

        self.job = job
        self.plan = plan
        self.tally = ray.remote(num_cpus=0)(Tally).remote()
        cpus = float(ray.cluster_resources().get("CPU", 1))
        self.concurrency = concurrency or max(1, int(cpus))
        # Leave one CPU's worth for the read and write tasks, or a small machine stalls.
        self.actor_cpus = min(1.0, max(0.1, (cpus - 1) / self.concurrency)) if cpus > 1 else 0.5
        self.folder = ray.put(pack_folder(job.model_dir))
        self.runtime_env: dict[str, Any] = {}
        if ship_requirements:
            lines = _requirement_lines(Path(job.model_dir) / "requirements.txt")
            if lines:
                self.runtime_env["pip"] = lines

    def score(self, ds: Any, where: str = "the Dataset") -> Any:
        import ray

        if self.job.mode != "jsonl":
            self.plan.check(_arrow_schema(ds), where, typed=self.job.mode == "arrow")
        return ds.map_batches(
            ScoreBatches,
            batch_format="pyarrow",
            batch_size=BATCH_ROWS,
            fn_constructor_kwargs={"job": self.job, "tally": self.tally, "folder": self.folder},
            compute=ray.data.ActorPoolStrategy(size=self.concurrency),
            num_cpus=self.actor_cpus,
            **({"runtime_env": self.runtime_env} if self.runtime_env else {}),
        )

    def totals(self) -> tuple[int, int, int]:
        import ray

        rows, errors, loads = ray.get(self.tally.totals.remote())
        return int(rows), int(errors), int(loads)


def _requirement_lines(path: Path) -> list[str]:
    """requirements.txt's lines for runtime_env ``pip`` (which takes the lines, not a path)."""
    if not path.is_file():
        return []
    lines = (raw.split(" #", 1)[0].strip() for raw in path.read_text("utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _arrow_schema(ds: Any) -> pa.Schema:
    schema = ds.schema()
    base = getattr(schema, "base_schema", None)
    if isinstance(base, pa.Schema):
        return base
    return pa.schema(list(zip(schema.names, schema.types, strict=True)))


def score_ray_dataset(
    ds: Any,
    model_path: str,
    *,
    keep: tuple[str, ...] | list[str] = (),
    on_error: str = "record",
    batch_size: int | None = None,
    concurrency: int | None = None,
) -> Any:
    """Score a Ray Dataset: the scored Dataset (lazy), with the same columns and rules as
    ``catwalk score`` (the ``keep`` columns, the outputs, ``catwalk_error``).

    ``on_error="stop"`` makes the first failing row fail the Dataset's execution. Column
    problems are raised here (reading the Dataset's schema).
    """
    from catwalk.score.engines import api_job

    job, plan = api_job(model_path, keep, on_error, batch_size)
    init()
    return RayScoring(job, plan, concurrency=concurrency).score(ds)


def read(inputs: Inputs, plan: ColumnPlan) -> Any:
    import ray

    paths = list(inputs.paths)
    if inputs.format == "parquet":
        return ray.data.read_parquet(paths)
    if inputs.format == "csv":
        import pyarrow.csv as pcsv

        options = pcsv.ConvertOptions(column_types=csv_column_types(plan), strings_can_be_null=True)
        return ray.data.read_csv(paths, convert_options=options)
    return ray.data.read_text(paths, drop_empty_lines=False).rename_columns({"text": LINE_COLUMN})


def score_files_ray(
    job: ScoreJob,
    plan: ColumnPlan,
    inputs: Inputs,
    output: str,
    out_format: str,
    *,
    overwrite: bool,
    concurrency: int | None,
    ship_requirements: bool,
) -> Summary:
    """``catwalk score --engine ray``: read, score, write to a temporary folder, move."""
    started = time.monotonic()
    init()
    store, path, prefix = arrow_store(output)
    target = OutputDir(store, path, overwrite=overwrite, prefix=prefix)
    scoring = RayScoring(job, plan, concurrency=concurrency, ship_requirements=ship_requirements)
    scored = scoring.score(read(inputs, plan), where=", ".join(inputs.paths[:3]))
    target.claim()
    try:
        if out_format == "parquet":
            scored.write_parquet(target.temp_uri)
        elif out_format == "csv":
            scored.write_csv(target.temp_uri)
        else:
            scored.write_json(target.temp_uri)
        target.publish()
    except BaseException as exc:
        target.discard()
        found = unwrap(exc)
        if found is not None:
            raise found from None
        raise
    rows, errors, loads = scoring.totals()
    return Summary(
        engine="ray",
        rows=rows,
        errors=errors,
        seconds=time.monotonic() - started,
        loads=loads,
        workers=scoring.concurrency,
        output=prefix + path,
    )
