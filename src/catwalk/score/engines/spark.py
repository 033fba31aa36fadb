"""The Spark engine: ``mapInArrow`` over the DataFrame, the model loaded once per Python worker.

The session is the active one or ``SparkSession.builder.getOrCreate()``, so ``spark-submit``,
``--master``, ``spark-defaults.conf`` and ``SPARK_*`` apply as for any PySpark job. The model
folder is shipped with the job as a broadcast variable (zipped once by the driver, unpacked
once per machine and content, :func:`~catwalk.score.worker.unpack_folder`), so two models
whose folders share a name never mix. Batches travel as Arrow record batches (no pandas:
integers stay integers and nulls stay nulls), and each Python worker keeps its loaded model
for every task it runs (:data:`catwalk.score.worker.WORKERS`; Spark reuses Python workers by
default). Accumulators
count rows, rows with errors and model loads for the summary. The output's Spark schema is
made from model.yml (:meth:`ColumnPlan.output_schema`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from catwalk.errors import CatwalkError
from catwalk.score.columns import SOURCE_COLUMN, ColumnPlan
from catwalk.score.inputs import Inputs
from catwalk.score.output import OutputDir
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


def session() -> Any:
    """The active SparkSession, or a new one from the usual configuration."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # A local master runs its Python workers with this interpreter unless told otherwise.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return SparkSession.builder.appName("catwalk score").getOrCreate()


class SparkScoring:
    """One model over DataFrames of one session, with the counters of the job."""

    def __init__(self, spark: Any, job: ScoreJob, plan: ColumnPlan) -> None:
        self.spark = spark
        self.job = job
        self.plan = plan
        context = spark.sparkContext
        self.folder = context.broadcast(pack_folder(job.model_dir))
        self.folder_name = Path(job.model_dir).name
        self.rows = context.accumulator(0)
        self.errors = context.accumulator(0)
        self.loads = context.accumulator(0)

    def check(self, df: Any, where: str) -> pa.Schema:
        from pyspark.sql.pandas.types import to_arrow_schema

        schema = to_arrow_schema(df.schema)
        if self.job.mode != "jsonl":
            self.plan.check(schema, where, typed=self.job.mode == "arrow")
        return schema

    def score(self, df: Any, where: str = "the DataFrame") -> Any:
        """The scored DataFrame (lazy): kept columns, outputs, catwalk_error."""
        from pyspark.sql.pandas.types import from_arrow_schema

        schema = self.check(df, where)
        if self.job.mode == "jsonl":
            keep_types = {name: self.plan.keep_type(name) for name in self.plan.keep}
        else:
            keep_types = {name: schema.field(name).type for name in self.plan.keep}
        out_schema = from_arrow_schema(self.plan.output_schema(keep_types))
        job, name, folder = self.job, self.folder_name, self.folder
        rows, errors, loads = self.rows, self.errors, self.loads

        def score_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            from pyspark import TaskContext

            scorer, loaded = WORKERS.scorer(job, lambda: unpack_folder(folder.value, name))
            if loaded:
                loads.add(1)
            context = TaskContext.get()
            where = f"partition {context.partitionId()}" if context else ""
            for batch in batches:
                try:
                    out, counts = scorer.score(batch, where)
                except CatwalkError as exc:
                    raise WorkerFailed(str(exc)) from None
                rows.add(counts.rows)
                errors.add(counts.errors)
                yield out

        return df.mapInArrow(score_partition, out_schema)


def score_spark_dataframe(
    df: Any,
    model_path: str,
    *,
    keep: tuple[str, ...] | list[str] = (),
    on_error: str = "record",
    batch_size: int | None = None,
) -> Any:
    """Score a Spark DataFrame: the scored DataFrame (lazy), with the same columns and rules
    as ``catwalk score`` (the ``--keep`` columns, the outputs, ``catwalk_error``).

    ``on_error="stop"`` makes the first failing row fail the Spark job when it runs (its
    message names the row's partition and kept values). Column problems are raised here.
    """
    from catwalk.score.engines import api_job

    job, plan = api_job(model_path, keep, on_error, batch_size)
    return SparkScoring(df.sparkSession, job, plan).score(df)


def read(spark: Any, inputs: Inputs, plan: ColumnPlan, stop: bool) -> Any:
    """The inputs as a DataFrame in the form the job's input mode expects."""
    paths = list(inputs.paths)
    if inputs.format == "parquet":
        df = spark.read.parquet(*paths)
    elif inputs.format == "csv":
        # Every column as text (Spark's default for CSV); the schema's cells are parsed per row.
        df = spark.read.option("header", True).csv(paths)
    else:
        df = spark.read.text(paths).withColumnRenamed("value", LINE_COLUMN)
    if stop:
        from pyspark.sql.functions import input_file_name

        df = df.withColumn(SOURCE_COLUMN, input_file_name())
    return df


def score_files_spark(
    job: ScoreJob,
    plan: ColumnPlan,
    inputs: Inputs,
    output: str,
    out_format: str,
    *,
    overwrite: bool,
) -> Summary:
    """``catwalk score --engine spark``: read, score, write to a temporary folder, move."""
    started = time.monotonic()
    spark = session()
    scoring = SparkScoring(spark, job, plan)
    target = OutputDir(HadoopStore(spark, output), _hadoop_path(output), overwrite=overwrite)
    df = read(spark, inputs, plan, job.stop)
    scored = scoring.score(df, where=", ".join(inputs.paths[:3]))
    target.claim()
    try:
        writer = scored.write.mode("errorifexists")
        if out_format == "parquet":
            writer.parquet(target.temp)
        elif out_format == "csv":
            writer.option("header", True).csv(target.temp)
        else:
            writer.option("ignoreNullFields", False).json(target.temp)
        target.publish()
    except BaseException as exc:
        target.discard()
        found = unwrap(exc)
        if found is not None:
            raise found from None
        raise
    return Summary(
        engine="spark",
        rows=int(scoring.rows.value),
        errors=int(scoring.errors.value),
        seconds=time.monotonic() - started,
        loads=int(scoring.loads.value),
        workers=int(spark.sparkContext.defaultParallelism),
        output=output,
    )


def _hadoop_path(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


class HadoopStore:
    """The output :class:`~catwalk.score.output.Store` through Hadoop's FileSystem (any path
    Spark can write: local, HDFS, S3A, ABFS, ...)."""

    def __init__(self, spark: Any, target: str) -> None:
        jvm = spark.sparkContext._jvm
        self._path = jvm.org.apache.hadoop.fs.Path
        conf = spark.sparkContext._jsc.hadoopConfiguration()
        self.fs = self._path(_hadoop_path(target)).getFileSystem(conf)

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self._path(path)))

    def move(self, src: str, dest: str) -> None:
        if not self.fs.rename(self._path(src), self._path(dest)):
            raise CatwalkError(f"cannot move {src} to {dest}")

    def delete(self, path: str) -> None:
        self.fs.delete(self._path(path), True)

    def makedirs(self, path: str) -> None:
        self.fs.mkdirs(self._path(path))
