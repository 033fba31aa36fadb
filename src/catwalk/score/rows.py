"""One batch of rows through the model, as ``POST /predict`` and ``catwalk predict`` score them.

:class:`RowScorer` is what every engine runs in its worker processes (loaded once there, see
:mod:`catwalk.score.worker`): an Arrow record batch in, the scored record batch out, with as
many rows, in the same order. Each row's record is checked against ``schema.input`` by the
model's compiled validator; the valid records of a chunk go to the model in one call through
its io type (:func:`catwalk.model_batch.predict_many`: ``predict_batch``, one DataFrame, one
joined array), and a chunk that fails as a whole is scored again record by record so that the
error lands on its row (:mod:`catwalk.scoring` does the same for JSON lines). Outputs are
normalised to JSON values, checked against ``schema.output`` and written to their columns. A
row that fails keeps its ``catwalk_error`` (``<field>: <problem>``, the words of
``POST /predict``) and null outputs, or, with ``stop``, ends the job naming its file and row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from catwalk.errors import CatwalkError, InvalidRequest, OutputError
from catwalk.json_codec import dumps, loads
from catwalk.model import LoadedModel
from catwalk.model_batch import predict_many
from catwalk.schema import SchemaValidator
from catwalk.score.columns import (
    ERROR_COLUMN,
    SOURCE_COLUMN,
    ColumnPlan,
    TypeProof,
    is_json_text,
)
from catwalk.scoring import Scorer
from catwalk.spec import DEFAULT_MAX_BATCH_SIZE, IoSchema

# How a batch's rows are read: typed columns (Parquet, Arrow, Spark, Ray), text cells (CSV),
# or one JSON text per row in the column ``line`` (JSON lines, parsed as catwalk predict does).
InputMode = Literal["arrow", "csv", "jsonl"]
LINE_COLUMN = "line"


class RowFailed(CatwalkError):
    """A row failed and the job was asked to stop on the first failure (``--on-error stop``)."""


@dataclass
class Counts:
    rows: int = 0
    errors: int = 0

    def add(self, other: Counts) -> None:
        self.rows += other.rows
        self.errors += other.errors


class RowScorer:
    """Scores record batches for one loaded model; see the module docstring."""

    def __init__(
        self,
        model: LoadedModel,
        plan: ColumnPlan,
        *,
        mode: InputMode = "arrow",
        batch_size: int | None = None,
        stop: bool = False,
    ) -> None:
        self.model = model
        self.plan = plan
        self.mode = mode
        self.stop = stop
        self.lines = Scorer(model)  # JSON lines are parsed exactly as catwalk predict does
        spec = model.spec
        self.kind = spec.batch_kind
        self.one_by_one = self.kind == "predict_batch" and spec.batching is None
        default = spec.batching.max_batch_size if spec.batching else DEFAULT_MAX_BATCH_SIZE
        self.chunk = max(1, batch_size or default)
        self.check_in = _record_check(spec.input, model.input_errors)
        record = spec.input.validator.json_schema
        if spec.input.is_batch and isinstance(record.get("items"), dict):
            record = record["items"]
        self.proof = TypeProof(record) if mode == "arrow" else None
        self.check_out = _record_check(spec.output, model.output_errors)
        self.all_in = _all_valid(spec.input)
        self.all_out = _all_valid(spec.output)

    # -- rows in ---------------------------------------------------------------------------

    def records(self, batch: pa.RecordBatch) -> tuple[list[Any], dict[int, str], list[Any], bool]:
        """Each row's record, the rows that already failed (a line that is not JSON), the
        kept columns (Arrow arrays, or Python values for JSON lines), and whether the
        columns' types prove every record valid (:class:`~catwalk.score.columns.TypeProof`)."""
        if self.mode == "jsonl":
            return (*self._line_records(batch), False)
        names = self.plan.input_columns(batch.schema.names)
        arrays = {n: _no_nan(batch.column(batch.schema.get_field_index(n))) for n in names}
        columns = [self._values(arrays[n], n) for n in names]
        optional = [
            i for i, n in enumerate(names) if n not in self.plan.required and None in columns[i]
        ]
        rows = zip(*columns, strict=True) if columns else iter([()] * batch.num_rows)
        if not optional:
            records: list[Any] = [dict(zip(names, row, strict=True)) for row in rows]
        else:  # a null in an optional field's column: the field is left out of that record
            required = self.plan.required
            records = [
                {n: v for n, v in zip(names, row, strict=True) if v is not None or n in required}
                for row in rows
            ]
        kept = [batch.column(batch.schema.get_field_index(n)) for n in self.plan.keep]
        proven = self.proof is not None and self.proof.proves(arrays)
        return records, {}, kept, proven

    def _values(self, column: pa.Array, name: str) -> list[Any]:
        typ = column.type
        if self.mode == "csv" and (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
            cells: list[Any] = column.to_pylist()
            if self.plan.fields.get(name, {}).get("type") == "string":
                return cells
            return [None if c is None else _cell(c) for c in cells]
        values: list[Any]
        if column.null_count == 0 and (
            pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_boolean(typ)
        ):
            values = column.to_numpy(zero_copy_only=False).tolist()
        elif pa.types.is_map(typ):
            values = [None if v is None else dict(v) for v in column.to_pylist()]
        else:
            values = column.to_pylist()
        return values

    def _line_records(self, batch: pa.RecordBatch) -> tuple[list[Any], dict[int, str], list[Any]]:
        records: list[Any] = []
        failed: dict[int, str] = {}
        keep = self.plan.keep
        kept: list[list[Any]] = [[] for _ in keep]
        fields = self.plan.fields
        for i, text in enumerate(batch.column(LINE_COLUMN).to_pylist()):
            try:
                record = self.lines.parse(text.encode("utf-8") if isinstance(text, str) else text)
            except CatwalkError as exc:
                failed[i] = str(exc)
                record = None
            for j, name in enumerate(keep):
                value = record.get(name) if isinstance(record, dict) else None
                kept[j].append(value)
                if isinstance(record, dict) and name not in fields:
                    record.pop(name, None)
            records.append(record)
        return records, failed, kept

    # -- the model -------------------------------------------------------------------------

    def outcomes(
        self, records: list[Any], failed: dict[int, str], proven: bool = False
    ) -> list[tuple[Any, str | None]]:
        """``(output, None)`` or ``(None, error)`` for each record, in order (``proven``:
        the records are known valid, see :meth:`records`)."""
        result: list[tuple[Any, str | None]] = [(None, failed.get(i)) for i in range(len(records))]
        for start in range(0, len(records), self.chunk):
            rows = [
                i for i in range(start, min(start + self.chunk, len(records))) if i not in failed
            ]
            if not proven and not self.all_in([records[i] for i in rows]):
                valid: list[tuple[int, Any]] = []
                for i in rows:
                    problems = self.check_in(records[i], "input")
                    if problems:
                        result[i] = (None, "; ".join(problems))
                    else:
                        valid.append((i, records[i]))
            else:
                valid = [(i, records[i]) for i in rows]
            if valid:
                self._predict(valid, result)
        return result

    def _predict(self, valid: list[tuple[int, Any]], result: list[tuple[Any, str | None]]) -> None:
        outputs: list[Any] | None = None
        if not self.one_by_one:
            try:
                outputs = predict_many(self.model, [record for _, record in valid])
            except CatwalkError:
                outputs = None  # the chunk failed as a whole: find the row, one at a time
        if outputs is not None and self.all_out(outputs):
            for n, (i, _) in enumerate(valid):
                result[i] = (outputs[n], None)
            return
        for n, (i, record) in enumerate(valid):
            try:
                output = self._one(record) if outputs is None else outputs[n]
                if isinstance(output, CatwalkError):
                    raise output
                problems = self.check_out(output, "output")
                if problems:
                    raise OutputError("; ".join(problems))
                result[i] = (output, None)
            except CatwalkError as exc:
                result[i] = (None, str(exc))

    def _one(self, record: Any) -> Any:
        if self.kind == "predict_batch":
            return self.model.predict(record)
        output = predict_many(self.model, [record])[0]
        if isinstance(output, CatwalkError):
            raise output
        return output

    # -- rows out --------------------------------------------------------------------------

    def score(self, batch: pa.RecordBatch, where: str = "", first_row: int = 0) -> Any:
        """The scored batch (same rows, same order) and its :class:`Counts`.

        With ``stop``, the first failing row raises :class:`RowFailed` naming ``where`` (or
        the row's file, from the engine's source column) and the row's number.
        """
        records, failed, kept, proven = self.records(batch)
        outcomes = self.outcomes(records, failed, proven)
        if self.stop:
            for i, (_, error) in enumerate(outcomes):
                if error is not None:
                    raise RowFailed(
                        f"{self._where(batch, i, where)}row {first_row + i + 1}: {error}"
                    )
        return self.table(outcomes, kept)

    def _where(self, batch: pa.RecordBatch, i: int, where: str) -> str:
        index = batch.schema.get_field_index(SOURCE_COLUMN)
        if index >= 0:
            where = f"{batch.column(index)[i].as_py()} (a batch of it)"
        keep = [
            f"{n}={batch.column(batch.schema.get_field_index(n))[i].as_py()!r}"
            for n in self.plan.keep
            if n in batch.schema.names
        ]
        return f"{where or 'input'}: " + (f"{', '.join(keep)}: " if keep else "")

    def table(self, outcomes: list[tuple[Any, str | None]], kept: list[Any]) -> Any:
        errors = [error for _, error in outcomes]
        arrays: list[pa.Array] = []
        for name, values in zip(self.plan.keep, kept, strict=True):
            if not isinstance(values, pa.Array | pa.ChunkedArray):
                values = _keep_array(values, self.plan.keep_type(name))
            arrays.append(values)
        outputs = [output for output, _ in outcomes]
        for name, schema in self.plan.outputs.items():
            if self.plan.output_is_record:
                values = [o.get(name) if type(o) is dict else None for o in outputs]
            else:
                values = list(outputs)
            arrays.append(_column(values, self.plan.output_types[name], schema, name, errors))
        arrays.append(pa.array(errors, pa.string()))
        counts = Counts(rows=len(outcomes), errors=sum(e is not None for e in errors))
        names = [*self.plan.keep, *self.plan.outputs, ERROR_COLUMN]
        return pa.RecordBatch.from_arrays(arrays, names=names), counts


def _record_check(side: IoSchema, whole: Callable[[Any, str], list[str]]) -> Any:
    """The check of one row's record: the items' validator for an array schema."""
    if side.is_batch and isinstance(side.validator.json_schema.get("items"), dict):
        return SchemaValidator(side.validator.json_schema["items"]).errors
    return whole


def _all_valid(side: IoSchema) -> Callable[[list[Any]], bool]:
    """Whether every record of a list is valid, in one call of the compiled validator (its
    loop over the list runs in the generated code); only a list with a problem is then
    checked record by record, for each record's own message."""
    record = side.validator.json_schema
    if side.is_batch and isinstance(record.get("items"), dict):
        record = record["items"]
    validator = SchemaValidator({"type": "array", "items": record})

    def check(values: list[Any]) -> bool:
        if any(isinstance(v, CatwalkError) for v in values):
            return False
        return not validator.errors(values, "rows")

    return check


def _no_nan(column: pa.Array) -> pa.Array:
    """NaN is how pandas and numpy mark a missing value, and JSON has none: null."""
    if pa.types.is_floating(column.type) and pc.any(pc.is_nan(column)).as_py():
        return pc.if_else(pc.is_nan(column), None, column)
    return column


def _cell(text: str) -> Any:
    """A CSV cell as the JSON value it spells (``3`` an integer, ``3.0`` a float, ``true``);
    text that is no JSON stays text, and the schema says what is wrong with it."""
    try:
        return loads(text.encode("utf-8"))
    except InvalidRequest:
        return text


def _keep_array(values: list[Any], typ: pa.DataType) -> pa.Array:
    """A kept column of JSON lines, of :meth:`ColumnPlan.keep_type`: a value that type cannot
    hold is null there (its row fails the input check, which names the value)."""
    if pa.types.is_string(typ):
        return pa.array(
            [v if v is None or isinstance(v, str) else dumps(v).decode("utf-8") for v in values],
            typ,
        )
    try:
        return pa.array(values, typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array([_fits(v, typ) for v in values], typ)


def _fits(value: Any, typ: pa.DataType) -> Any:
    try:
        pa.array([value], typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    return value


def _column(
    values: list[Any], typ: pa.DataType, schema: dict[str, Any], name: str, errors: list[Any]
) -> pa.Array:
    """One output column; a value its Arrow type cannot hold becomes that row's error."""
    if is_json_text(schema, typ):
        values = [None if v is None else dumps(v).decode("utf-8") for v in values]
    try:
        return pa.array(values, typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    cells: list[Any] = []
    for i, value in enumerate(values):
        try:
            pa.array([value], typ)
            cells.append(value)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            cells.append(None)
            if errors[i] is None:
                errors[i] = f"output.{name}: cannot be stored as {typ} ({exc})"
    return pa.array(cells, typ)
