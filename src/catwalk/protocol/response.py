"""The model's output records -> an Open Inference Protocol inference response body.

Each requested output tensor is one field of the records (or the records themselves), with
the datatype and shape its schema gives (:mod:`catwalk.protocol.tensors`), sent in the JSON
(``data``) or, when asked (``binary_data``, ``binary_data_output``), as binary data after
it with ``parameters.binary_data_size`` — the response's ``Inference-Header-Content-Length``
then gives the JSON part's length. An optional output field that no record has is left
out. A value that does not fit its tensor (possible only when ``server.validate_output`` is
off, or for an optional field that some records leave out and others do not) is an
:class:`~catwalk.errors.OutputError` naming the record and the tensor.
"""

from __future__ import annotations

from typing import Any

from catwalk.errors import OutputError
from catwalk.json_codec import dumps
from catwalk.protocol import binary
from catwalk.protocol.request import Requested
from catwalk.protocol.tensors import INT_RANGES, Tensor

_MISSING: Any = object()


def encode(
    head: dict[str, Any], records: list[Any], outputs: list[Requested], fields: bool
) -> tuple[bytes, int | None]:
    """``(body, JSON header length)``: the length is None when no tensor is binary.

    ``head`` is the response's ``model_name``, ``model_version`` and ``id``; ``fields``: the
    records are objects, one tensor per property (else each record is the one tensor's row).
    """
    tensors: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for requested in outputs:
        tensor = requested.tensor
        if fields and not tensor.required and not _present(tensor, records):
            continue  # an optional field no record has: no tensor (a tensor has N values)
        column = _column(tensor, records) if fields else records
        values = _values(tensor, column)
        shape = [len(records)] if tensor.width is None else [len(records), tensor.width]
        out: dict[str, Any] = {"name": tensor.name, "datatype": tensor.datatype, "shape": shape}
        if requested.binary:
            try:
                chunk = binary.pack(tensor.datatype, _to_bytes(tensor, values))
            except ValueError as exc:
                raise OutputError(f"output tensor {tensor.name}: {exc}") from None
            out["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            out["data"] = _to_text(tensor, values)
        tensors.append(out)
    head["outputs"] = tensors
    try:
        header = dumps(head)
    except (TypeError, ValueError) as exc:
        raise OutputError(f"output: cannot be written as JSON ({exc})") from None
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)


def _present(tensor: Tensor, records: list[Any]) -> bool:
    field = tensor.field
    return any(type(record) is dict and field in record for record in records)


def _column(tensor: Tensor, records: list[Any]) -> list[Any]:
    field = tensor.field
    column = []
    for i, record in enumerate(records):
        value = record.get(field, _MISSING) if type(record) is dict else _MISSING
        if value is _MISSING:
            what = "has no" if type(record) is dict else "is not an object, so no"
            raise OutputError(
                f"output[{i}]: {what} field {field!r} for output tensor {tensor.name} "
                "(a tensor needs a value in every record)"
            )
        column.append(value)
    return column


def _values(tensor: Tensor, column: list[Any]) -> list[Any]:
    """The tensor's elements, row-major, each checked against the tensor's kind."""
    if tensor.width is None:
        if tensor.kind != "json":
            _check(tensor, column, 0)
        return column
    flat: list[Any] = []
    k = tensor.width
    for i, row in enumerate(column):
        if type(row) is not list or len(row) != k:
            raise OutputError(
                f"output[{i}]: output tensor {tensor.name} needs an array of {k} numbers"
            )
        flat += row
    _check(tensor, flat, k)
    return flat


def _check(tensor: Tensor, values: list[Any], width: int) -> None:
    kind = tensor.kind
    for at, v in enumerate(values):
        t = type(v)
        if kind == "float":
            ok = t is float or t is int
        elif kind == "int":
            low, high = INT_RANGES[tensor.datatype]
            ok = t is int and low <= v <= high
        elif kind == "bool":
            ok = t is bool
        else:
            ok = t is str
        if not ok:
            row = at // width if width else at
            raise OutputError(
                f"output[{row}]: {str(v)[:40]!r} does not fit output tensor {tensor.name} "
                f"({tensor.datatype})"
            )


def _to_bytes(tensor: Tensor, values: list[Any]) -> list[Any]:
    if tensor.kind == "str":
        return [v.encode("utf-8") for v in values]
    if tensor.kind == "json":
        return [_json_text(tensor, v) for v in values]
    return values


def _to_text(tensor: Tensor, values: list[Any]) -> list[Any]:
    if tensor.kind == "json":
        return [_json_text(tensor, v).decode("utf-8") for v in values]
    return values


def _json_text(tensor: Tensor, value: Any) -> bytes:
    try:
        return dumps(value)
    except (TypeError, ValueError) as exc:
        raise OutputError(
            f"output tensor {tensor.name}: a value cannot be written as JSON ({exc})"
        ) from None
