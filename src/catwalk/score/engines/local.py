"""The local engine: worker processes on this machine's usable cores, streaming the input.

The main process reads each input file in bounded batches (:class:`~catwalk.score.inputs.
LocalReader`), hands them to a pool of worker processes (one per usable CPU,
:func:`catwalk.cpus.usable_cpus`, started with ``spawn``: no inherited threads or state), and
writes their scored batches in input order, one part file per input file. At most two
batches per worker are in flight, so memory stays bounded whatever the input's size. Each
worker loads the model once, on its first batch (:data:`catwalk.score.worker.WORKERS`).
"""

from __future__ import annotations

import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pyarrow as pa

from catwalk.errors import CatwalkError
from catwalk.score.columns import ColumnPlan
from catwalk.score.inputs import Inputs, LocalReader
from catwalk.score.output import OutputDir
from catwalk.score.rows import Counts
from catwalk.score.summary import Summary
from catwalk.score.worker import WORKERS, ScoreJob, WorkerFailed, unwrap
from catwalk.score.writers import PartWriter

IN_FLIGHT_PER_WORKER = 2


def score_batch(
    job: ScoreJob, batch: pa.RecordBatch, where: str, first_row: int
) -> tuple[pa.RecordBatch, Counts, bool]:
    """In a worker: one batch scored (and whether the model was loaded for it)."""
    scorer, loaded = WORKERS.scorer(job)
    try:
        out, counts = scorer.score(batch, where, first_row)
    except CatwalkError as exc:
        raise WorkerFailed(str(exc)) from None
    return out, counts, loaded


class LocalEngine:
    """Runs one job over local files; see the module docstring."""

    def __init__(
        self,
        job: ScoreJob,
        plan: ColumnPlan,
        inputs: Inputs,
        output: OutputDir,
        *,
        out_format: str,
        workers: int,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.job = job
        self.plan = plan
        self.inputs = inputs
        self.output = output
        self.out_format = out_format
        self.workers = max(1, workers)
        self.progress = progress
        self.readers = [LocalReader(p, inputs.format, plan) for p in inputs.files]

    def total_rows(self) -> int | None:
        counts = [r.rows() for r in self.readers]
        return None if any(c is None for c in counts) else sum(c or 0 for c in counts)

    def check(self) -> None:
        """Every file's columns against the schema, before any row is scored."""
        for reader in self.readers:
            schema = reader.schema()
            if schema is not None:
                self.plan.check(schema, str(reader.path), typed=reader.format == "parquet")

    def run(self) -> Summary:
        started = time.monotonic()
        self.check()
        self.output.claim()
        self.output.store.makedirs(self.output.temp)
        try:
            counts, loads = self._score_all()
            self.output.publish()
        except BaseException:
            self.output.discard()
            raise
        return Summary(
            engine="local",
            rows=counts.rows,
            errors=counts.errors,
            seconds=time.monotonic() - started,
            loads=loads,
            workers=self.workers,
            output=self.output.prefix + self.output.path,
        )

    def _score_all(self) -> tuple[Counts, int]:
        total = Counts()
        loads = 0
        context = multiprocessing.get_context("spawn")
        pending: deque[tuple[int, Future[Any]]] = deque()
        writers: dict[int, PartWriter] = {}
        with ProcessPoolExecutor(self.workers, mp_context=context) as pool:
            try:
                for index, reader, batch, first in self._batches():
                    if index not in writers:
                        writers[index] = self._writer(index, reader)
                    if len(pending) >= self.workers * IN_FLIGHT_PER_WORKER:
                        loads += self._write(pending.popleft(), writers, total)
                    future = pool.submit(score_batch, self.job, batch, str(reader.path), first)
                    pending.append((index, future))
                while pending:
                    loads += self._write(pending.popleft(), writers, total)
                for writer in writers.values():
                    writer.close()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                for writer in writers.values():
                    writer.abandon()
                raise
        return total, loads

    def _batches(self) -> Iterator[tuple[int, LocalReader, pa.RecordBatch, int]]:
        for index, reader in enumerate(self.readers):
            first = 0
            empty = True
            for batch in reader.batches():
                empty = False
                yield index, reader, batch, first
                first += batch.num_rows
            if empty:
                yield index, reader, _empty_batch(reader), 0

    def _writer(self, index: int, reader: LocalReader) -> PartWriter:
        keep_types = self._keep_types(reader)
        schema = self.plan.output_schema(keep_types)
        path = Path(self.output.temp) / f"part-{index:05d}.{_EXT[self.out_format]}"
        return PartWriter(path, self.out_format, schema)

    def _keep_types(self, reader: LocalReader) -> dict[str, pa.DataType]:
        schema = reader.schema()
        if schema is None:  # JSON lines
            return {name: self.plan.keep_type(name) for name in self.plan.keep}
        return {name: schema.field(name).type for name in self.plan.keep}

    def _write(
        self, entry: tuple[int, Future[Any]], writers: dict[int, PartWriter], total: Counts
    ) -> int:
        index, future = entry
        try:
            out, counts, loaded = future.result()
        except BrokenProcessPool:
            raise CatwalkError(
                "a worker process died (killed, out of memory, or the model crashed the "
                "interpreter); nothing was written"
            ) from None
        except WorkerFailed as exc:
            raise unwrap(exc) or CatwalkError(str(exc)) from None
        writers[index].write(out)
        total.add(counts)
        if self.progress is not None:
            self.progress(counts.rows)
        return int(loaded)


_EXT = {"parquet": "parquet", "jsonl": "jsonl", "csv": "csv"}


def _empty_batch(reader: LocalReader) -> pa.RecordBatch:
    schema = reader.schema()
    if schema is None:
        from catwalk.score.rows import LINE_COLUMN

        return pa.RecordBatch.from_arrays([pa.array([], pa.binary())], names=[LINE_COLUMN])
    return pa.RecordBatch.from_pylist([], schema=schema)
