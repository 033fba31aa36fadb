"""model.yml's schema as Open Inference Protocol tensors: which names, datatypes and shapes.

One side of the schema (``schema.input`` or ``schema.output``) describes a *record*: the side
itself, or its ``items`` when it is an array (a batch model takes and returns a list of
records). N records travel as tensors whose first dimension is N:

- a record that is an object with ``properties``: one tensor per property, named after it;
- any other record: one tensor named after the side (``input`` or ``output``).

Which it is depends on the model (:func:`side_tensors`'s ``items``). A value's schema gives
the tensor (docs/protocol.md has the table): ``integer`` -> INT64
(INT32 with ``format: int32``), ``number`` -> FP64 (FP32 with ``format: float``),
``boolean`` -> BOOL, ``string`` -> BYTES (UTF-8), all of shape ``[N]``; an array of integers
or numbers with ``minItems == maxItems == k`` -> shape ``[N, k]``; anything else (objects,
free arrays, ``anyOf``, a ``nullable`` value: the protocol has no null) -> BYTES holding each
record's value as JSON text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from catwalk.spec import ModelSpec

# How a tensor element becomes a record's value: an integer, a number, a boolean, a string,
# or JSON text parsed into any JSON value.
Kind = Literal["int", "float", "bool", "str", "json"]

# Bytes per element of every fixed-size datatype (BYTES is variable: a 4-byte length first).
ITEM_SIZE = {
    "BOOL": 1,
    "UINT8": 1,
    "UINT16": 2,
    "UINT32": 4,
    "UINT64": 8,
    "INT8": 1,
    "INT16": 2,
    "INT32": 4,
    "INT64": 8,
    "FP16": 2,
    "FP32": 4,
    "FP64": 8,
}
DATATYPES = (*ITEM_SIZE, "BYTES", "BF16")
INTEGER_TYPES = frozenset(t for t in ITEM_SIZE if t.startswith(("INT", "UINT")))
# The values each integer datatype holds, both ends included.
INT_RANGES = {
    t: (0, 2 ** (8 * n) - 1) if t.startswith("U") else (-(2 ** (8 * n - 1)), 2 ** (8 * n - 1) - 1)
    for t, n in ITEM_SIZE.items()
    if t in INTEGER_TYPES
}
FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})

# The request datatypes accepted for a tensor of each declared datatype: those whose every
# value is exactly a value of the declared type (INT32 data for INT64, FP32 for FP64; never
# a float for an integer, nor INT64 for FP64, which is exact only up to 2**53).
ACCEPTS: dict[str, frozenset[str]] = {
    "INT64": frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32"}),
    "INT32": frozenset({"INT8", "INT16", "INT32", "UINT8", "UINT16"}),
    "FP64": frozenset(
        {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "UINT8", "UINT16", "UINT32"}
    ),
    "FP32": frozenset({"FP16", "FP32", "INT8", "INT16", "UINT8", "UINT16"}),
    "BOOL": frozenset({"BOOL"}),
    "BYTES": frozenset({"BYTES"}),
}


@dataclass(frozen=True)
class Tensor:
    """One tensor of a side: its name, the record field it fills, its datatype and shape."""

    name: str
    field: str | None  # the record's property; None: the tensor is the whole record
    datatype: str
    kind: Kind
    width: int | None = None  # k of shape [N, k]; None: shape [N]
    required: bool = True

    @property
    def shape(self) -> list[int]:
        """The metadata shape: ``-1`` for N records."""
        return [-1] if self.width is None else [-1, self.width]

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


@dataclass(frozen=True)
class Side:
    """The tensors of one side of a model's schema, in the order of its properties."""

    name: str  # "input" or "output"
    tensors: tuple[Tensor, ...]
    by_name: dict[str, Tensor]
    fields: bool  # True: a record is an object, one tensor per property

    def metadata(self) -> list[dict[str, Any]]:
        return [tensor.metadata() for tensor in self.tensors]


def side_tensors(openapi: dict[str, Any], side: str, *, items: bool) -> Side:
    """The tensors of ``openapi`` (a checked ``schema.input`` or ``schema.output``).

    ``items``: the side is an array whose items are the records (a batch model's); otherwise
    the side itself is one record.
    """
    record = openapi.get("items") if items else openapi
    if not isinstance(record, dict):
        record = {}
    props = record.get("properties")
    is_object = record.get("type", "object" if props else None) == "object"
    if is_object and isinstance(props, dict) and props and not record.get("nullable", False):
        required = set(record.get("required", list(props)))
        tensors = tuple(_tensor(name, name, sub, name in required) for name, sub in props.items())
        return Side(side, tensors, {t.name: t for t in tensors}, True)
    tensor = _tensor(side, None, record, True)
    return Side(side, (tensor,), {side: tensor}, False)


def _tensor(name: str, field: str | None, schema: Any, required: bool) -> Tensor:
    if not isinstance(schema, dict) or schema.get("nullable", False):
        return Tensor(name, field, "BYTES", "json", required=required)
    typed = _scalar(schema)
    if typed is not None:
        return Tensor(name, field, typed[0], typed[1], required=required)
    items = schema.get("items")
    size = schema.get("minItems")
    if (
        schema.get("type") == "array"
        and isinstance(items, dict)
        and not items.get("nullable", False)
        and type(size) is int
        and size >= 1
        and schema.get("maxItems") == size
    ):
        typed = _scalar(items)
        if typed is not None and typed[1] in ("int", "float"):
            return Tensor(name, field, typed[0], typed[1], width=size, required=required)
    return Tensor(name, field, "BYTES", "json", required=required)


def _scalar(schema: dict[str, Any]) -> tuple[str, Kind] | None:
    typ = schema.get("type")
    if typ == "integer":
        return ("INT32" if schema.get("format") == "int32" else "INT64"), "int"
    if typ == "number":
        return ("FP32" if schema.get("format") == "float" else "FP64"), "float"
    if typ == "boolean":
        return "BOOL", "bool"
    if typ == "string":
        return "BYTES", "str"
    return None


def model_sides(spec: ModelSpec) -> tuple[Side, Side, bool]:
    """The input and output tensors of a model, and whether its N records go to the model as
    one input (an array-input or DataFrame model) rather than one input each."""
    whole = spec.input.is_batch or spec.io_type == "PANDAS_DATA_FRAME"
    inputs = side_tensors(spec.input.openapi, "input", items=spec.input.is_batch)
    outputs = side_tensors(spec.output.openapi, "output", items=whole and spec.output.is_batch)
    return inputs, outputs, whole
