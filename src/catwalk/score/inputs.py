"""The job's inputs: paths, globs and folders to files of one format, and reading them in pieces.

``--input`` takes a file, a folder (its files, recursively; names starting with ``.`` or
``_`` are skipped, as Spark and Hive write ``_SUCCESS`` and ``.crc`` files) or a glob. The
format comes from the extension (``.parquet``/``.pq``, ``.csv``, ``.jsonl``/``.ndjson``/
``.json``) or from ``--input-format``. A URI with a scheme (``s3://``, ``hdfs://``, ...) is
handed to Spark or Ray as it is.

The local engine reads each file in batches bounded in rows and in bytes, so a file larger
than memory is scored in pieces: Parquet by row group (only the columns the job uses), CSV
with Arrow's streaming reader (the schema's columns as text, parsed per row), JSON lines as
lines.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from catwalk.errors import CatwalkError
from catwalk.score.columns import ColumnPlan
from catwalk.score.rows import LINE_COLUMN, InputMode

Format = Literal["parquet", "csv", "jsonl"]
FORMATS: tuple[Format, ...] = ("parquet", "csv", "jsonl")
_EXTENSIONS: dict[str, Format] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
MODES: dict[Format, InputMode] = {"parquet": "arrow", "csv": "csv", "jsonl": "jsonl"}
BATCH_ROWS = 10_000  # rows per batch at most...
BATCH_BYTES = 8 << 20  # ...and about this many bytes of input


class InputError(CatwalkError):
    """An --input names nothing readable, or files of mixed or unknown formats."""


@dataclass(frozen=True)
class Inputs:
    """The resolved inputs: ``paths`` for an engine; ``files`` when they are all local."""

    paths: tuple[str, ...]
    format: Format
    files: tuple[Path, ...] = ()

    @property
    def mode(self) -> InputMode:
        return MODES[self.format]


def is_uri(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def resolve(specs: list[str], given_format: str | None = None) -> Inputs:
    """Expand the --input values; InputError when one matches nothing or formats differ."""
    if not specs:
        raise InputError("no --input given")
    remote = [s for s in specs if is_uri(s)]
    if remote:
        if len(remote) != len(specs):
            raise InputError("--input: local paths and URIs cannot be mixed in one job")
        return Inputs(tuple(specs), _format_of(specs, given_format, "the URIs"))
    files: list[Path] = []
    for spec in specs:
        files += _expand(spec.removeprefix("file://"))
    fmt = _format_of([str(f) for f in files], given_format, "the input files")
    return Inputs(tuple(str(f) for f in files), fmt, tuple(files))


def _expand(spec: str) -> list[Path]:
    path = Path(spec)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and not any(part[:1] in "._" for part in p.relative_to(path).parts)
        )
        if not found:
            raise InputError(f"--input {spec}: the folder holds no data files")
        return found
    if glob.has_magic(spec):
        matched = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not matched:
            raise InputError(f"--input {spec}: the pattern matches no file")
        return matched
    raise InputError(f"--input {spec}: no such file or folder")


def _format_of(paths: list[str], given: Any, what: str) -> Format:
    if given is not None:
        if given not in FORMATS:
            raise InputError(f"--input-format {given}: expected one of {', '.join(FORMATS)}")
        fmt: Format = given
        return fmt
    found = {_EXTENSIONS.get(os.path.splitext(p.rstrip("/"))[1].lower()) for p in paths}
    if None in found or not found:
        unknown = next(p for p in paths if _EXTENSIONS.get(os.path.splitext(p)[1].lower()) is None)
        raise InputError(
            f"{unknown}: cannot tell its format from the extension; give --input-format "
            f"({', '.join(FORMATS)})"
        )
    if len(found) > 1:
        raise InputError(
            f"{what} mix formats ({', '.join(sorted(map(str, found)))}): one job scores one format"
        )
    return found.pop()  # type: ignore[return-value]


def csv_column_types(plan: ColumnPlan) -> dict[str, pa.DataType]:
    """CSV columns read as text: the schema's fields (parsed per row) and the kept ones."""
    return {name: pa.string() for name in [*plan.fields, *plan.keep]}


class LocalReader:
    """Reads one local file in bounded batches for the local engine."""

    def __init__(self, path: Path, fmt: Format, plan: ColumnPlan) -> None:
        self.path = path
        self.format = fmt
        self.plan = plan

    def schema(self) -> pa.Schema | None:
        """The file's columns (None for JSON lines: each line says its own)."""
        if self.format == "parquet":
            return self._parquet().schema_arrow
        if self.format == "csv":
            with self._csv() as reader:
                schema: pa.Schema = reader.schema
                return schema
        return None

    def rows(self) -> int | None:
        if self.format == "parquet":
            count: int = self._parquet().metadata.num_rows
            return count
        return None

    def batches(self) -> Iterator[pa.RecordBatch]:
        if self.format == "parquet":
            yield from self._parquet_batches()
        elif self.format == "csv":
            with self._csv() as reader:
                for batch in reader:
                    yield from _split(batch)
        else:
            yield from self._line_batches()

    def _parquet(self) -> Any:
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(self.path, pre_buffer=False, buffer_size=1 << 20)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{self.path}: not a readable Parquet file ({exc})") from None

    def _parquet_batches(self) -> Iterator[pa.RecordBatch]:
        parquet = self._parquet()
        names = parquet.schema_arrow.names
        wanted = set(self.plan.input_columns(names)) | set(self.plan.keep)
        columns = [n for n in names if n in wanted]
        meta = parquet.metadata
        size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        per_row = size / meta.num_rows if meta.num_rows else 1
        rows = int(max(1, min(BATCH_ROWS, BATCH_BYTES // max(per_row, 1))))
        try:
            for batch in parquet.iter_batches(batch_size=rows, columns=columns, use_threads=False):
                yield from _split(batch)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{self.path}: cannot be read ({exc})") from None

    def _csv(self) -> Any:
        import pyarrow.csv as pcsv

        try:
            return pcsv.open_csv(
                self.path,
                read_options=pcsv.ReadOptions(block_size=1 << 20),
                convert_options=pcsv.ConvertOptions(
                    column_types=csv_column_types(self.plan), strings_can_be_null=True
                ),
            )
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{self.path}: not a readable CSV file ({exc})") from None

    def _line_batches(self) -> Iterator[pa.RecordBatch]:
        lines: list[bytes] = []
        size = 0
        with open(self.path, "rb") as source:
            for line in source:
                lines.append(line.rstrip(b"\r\n"))
                size += len(line)
                if len(lines) >= BATCH_ROWS or size >= BATCH_BYTES:
                    yield _lines_batch(lines)
                    lines, size = [], 0
        if lines:
            yield _lines_batch(lines)


def _lines_batch(lines: list[bytes]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array(lines, pa.binary())], names=[LINE_COLUMN])


def _split(batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
    """Batches of at most BATCH_ROWS rows and about BATCH_BYTES (a row group's size on disk
    can hide its size in memory: a dictionary-encoded column is expanded when read)."""
    rows = batch.num_rows
    if rows and batch.nbytes > BATCH_BYTES:
        rows = max(1, int(rows * BATCH_BYTES / batch.nbytes))
    step = max(1, min(rows, BATCH_ROWS))
    for start in range(0, batch.num_rows, step):
        yield batch.slice(start, step)
