"""Writing scored batches to one local part file: Parquet, JSON lines or CSV, streamed."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from catwalk.json_codec import dumps


class PartWriter:
    """One output file, written batch by batch (never the whole table in memory)."""

    def __init__(self, path: Path, fmt: str, schema: pa.Schema) -> None:
        self.path = path
        self.format = fmt
        self.schema = schema
        self._writer: Any = None
        self._file: IO[bytes] | None = None
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(path, schema)
        elif fmt == "csv":
            import pyarrow.csv as pcsv

            self._writer = pcsv.CSVWriter(path, schema)
        else:
            self._file = open(path, "wb")  # noqa: SIM115 - closed by close() / abandon()

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.schema != self.schema:
            batch = pa.RecordBatch.from_arrays(batch.columns, schema=self.schema)
        if self._file is not None:
            self._file.write(b"".join(dumps(row) + b"\n" for row in batch.to_pylist()))
        else:
            self._writer.write_batch(batch)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        else:
            self._writer.close()

    def abandon(self) -> None:
        """Close without caring whether the file is complete (it is deleted next)."""
        with contextlib.suppress(Exception):  # the folder is deleted next anyway
            self.close()
