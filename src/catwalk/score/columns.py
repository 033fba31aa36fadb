"""A model's schema as table columns: which columns a row needs, their Arrow types, and checks.

A scored row is a *record*: for an object input it is the request's ``input``; for an array
input (a batch model) or a ``PANDAS_DATA_FRAME`` model it is one item / one DataFrame row. The
record's schema (:func:`record_schema`) gives the input columns: every listed property is a
column of that name; columns the schema does not list are inputs too only when it allows
``additionalProperties``. The output side gives one column per listed property of the output
record (or one ``output`` column when the output is not an object) and ``catwalk_error``.

Before anything is scored, :meth:`ColumnPlan.check` compares the input's columns with the
schema: a required field with no column, or a column whose type no value of can satisfy the
schema (strings for a ``number``; floats for an ``integer``, which would mean integers were
turned into floats upstream), stops the job with one message naming the column, its type and
the schema's. Values are then given to the model as they are: integers stay integers, floats
stay floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from catwalk.errors import CatwalkError
from catwalk.spec import ModelSpec

ERROR_COLUMN = "catwalk_error"
OUTPUT_COLUMN = "output"  # the one output column of a model whose output is not an object
# Added by an engine to name a failing row's file (--on-error stop); never an input.
SOURCE_COLUMN = "__catwalk_source__"
_SCHEMA_TYPES = ("string", "boolean", "integer", "number", "array", "object")


class ColumnError(CatwalkError):
    """The input's columns cannot be scored by this model (checked before any row is)."""


def record_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """The schema of one row: the items of an array schema, else the schema itself."""
    if openapi.get("type") == "array" and isinstance(openapi.get("items"), dict):
        items: dict[str, Any] = openapi["items"]
        return items
    return openapi


def arrow_type(schema: dict[str, Any], *, flat: bool = False) -> pa.DataType:
    """The Arrow type of values of an OpenAPI schema (``flat``: nested values as JSON text).

    Anything without one plain type (``anyOf``, an object without ``properties``, no
    ``type``) is stored as its JSON text, so no value is ever lost to a column type.
    """
    typ = schema.get("type")
    if typ == "integer":
        return pa.int64()
    if typ == "number":
        return pa.float64()
    if typ == "boolean":
        return pa.bool_()
    if typ == "string":
        return pa.string()
    if flat:
        return pa.string()
    if typ == "array" and isinstance(schema.get("items"), dict):
        return pa.list_(arrow_type(schema["items"]))
    props = schema.get("properties")
    closed = schema.get("additionalProperties", False) is False
    if typ == "object" and isinstance(props, dict) and props and closed:
        return pa.struct([(k, arrow_type(v)) for k, v in props.items()])
    return pa.string()


def is_json_text(schema: dict[str, Any], typ: pa.DataType) -> bool:
    """Whether values of ``schema`` are stored as JSON text in a column of type ``typ``."""
    return bool(pa.types.is_string(typ)) and schema.get("type") != "string"


def describe_type(typ: pa.DataType) -> str:
    return str(typ).replace("large_string", "string")


def _schema_type(schema: dict[str, Any]) -> str:
    typ = schema.get("type")
    return str(typ) if typ in _SCHEMA_TYPES else "any value"


def compatible(typ: pa.DataType, schema: dict[str, Any]) -> bool:
    """Whether some value of a column of Arrow type ``typ`` may satisfy ``schema``."""
    want = schema.get("type")
    if want not in _SCHEMA_TYPES or pa.types.is_null(typ):
        return True  # no type to check (a combinator, say); an all-null column: per row
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    if want == "integer":
        return bool(pa.types.is_integer(typ))
    if want == "number":
        return bool(pa.types.is_integer(typ) or pa.types.is_floating(typ))
    if want == "boolean":
        return bool(pa.types.is_boolean(typ))
    if want == "string":
        return bool(pa.types.is_string(typ) or pa.types.is_large_string(typ))
    if want == "array":
        if not (pa.types.is_list(typ) or pa.types.is_large_list(typ)):
            return bool(pa.types.is_fixed_size_list(typ)) and _items_ok(typ, schema)
        return _items_ok(typ, schema)
    if pa.types.is_map(typ):
        return bool(pa.types.is_string(typ.key_type) or pa.types.is_large_string(typ.key_type))
    if not pa.types.is_struct(typ):
        return False
    props = schema.get("properties")
    if not isinstance(props, dict):
        return True
    for i in range(typ.num_fields):
        sub = typ.field(i)
        if sub.name in props and not compatible(sub.type, props[sub.name]):
            return False
    return True


def _items_ok(typ: pa.DataType, schema: dict[str, Any]) -> bool:
    items = schema.get("items")
    return not isinstance(items, dict) or compatible(typ.value_type, items)


@dataclass(frozen=True)
class ColumnPlan:
    """The input and output columns of a scoring job for one model."""

    fields: dict[str, dict[str, Any]]  # input property -> its schema
    required: frozenset[str]
    open_record: bool  # other columns are inputs too (additionalProperties is not false)
    keep: tuple[str, ...]
    outputs: dict[str, dict[str, Any]]  # output column -> its schema
    output_is_record: bool  # the outputs are the properties of an object
    flat: bool = False  # nested outputs as JSON text (CSV output)
    output_types: dict[str, pa.DataType] = field(default_factory=dict)

    @classmethod
    def for_model(
        cls, spec: ModelSpec, keep: tuple[str, ...] = (), flat: bool = False
    ) -> ColumnPlan:
        record = record_schema(spec.input.openapi)
        props = record.get("properties")
        fields = dict(props) if isinstance(props, dict) else {}
        required = record.get("required", list(fields))
        open_record = record.get("type") != "object" or record.get("additionalProperties", False)
        out_record = record_schema(spec.output.openapi)
        out_props = out_record.get("properties")
        if out_record.get("type") == "object" and isinstance(out_props, dict) and out_props:
            outputs = dict(out_props)
            output_is_record = True
        else:
            outputs = {OUTPUT_COLUMN: out_record}
            output_is_record = False
        types = {name: arrow_type(schema, flat=flat) for name, schema in outputs.items()}
        plan = cls(
            fields=fields,
            required=frozenset(r for r in required if isinstance(r, str)),
            open_record=bool(open_record is not False),
            keep=tuple(keep),
            outputs=outputs,
            output_is_record=output_is_record,
            flat=flat,
            output_types=types,
        )
        plan._check_names()
        return plan

    def _check_names(self) -> None:
        taken = {*self.outputs, ERROR_COLUMN}
        for name in self.keep:
            if name in taken:
                raise ColumnError(
                    f"--keep {name}: the output already has a column {name!r} "
                    f"(the model's outputs and {ERROR_COLUMN}); rename the input column first"
                )
        if len(set(self.keep)) != len(self.keep):
            raise ColumnError("--keep: a column is named more than once")

    def output_schema(self, keep_types: dict[str, pa.DataType]) -> pa.Schema:
        """The output table's schema: kept columns, the model's outputs, ``catwalk_error``."""
        columns = [pa.field(name, keep_types[name]) for name in self.keep]
        columns += [pa.field(name, typ) for name, typ in self.output_types.items()]
        columns.append(pa.field(ERROR_COLUMN, pa.string()))
        return pa.schema(columns)

    def keep_type(self, name: str) -> pa.DataType:
        """A kept value's type when it comes from JSON lines: the schema's plain type when it
        is an input field, else text (a string as itself, anything else as its JSON)."""
        schema = self.fields.get(name, {})
        if schema.get("type") in ("integer", "number", "boolean", "string"):
            return arrow_type(schema)
        return pa.string()

    def input_columns(self, names: list[str]) -> list[str]:
        """The columns of ``names`` that go into a row's record."""
        if self.open_record:
            return [
                n for n in names if n in self.fields or (n not in self.keep and n != SOURCE_COLUMN)
            ]
        return [n for n in names if n in self.fields]

    def check(self, schema: pa.Schema, where: str, *, typed: bool = True) -> None:
        """Stop before scoring when ``schema`` (the input's columns) cannot fit the model.

        ``typed`` is False for CSV, whose columns are text parsed per row (only presence is
        checked there).
        """
        names = list(schema.names)
        missing = [n for n in self.keep if n not in names]
        if missing:
            raise ColumnError(
                f"{where}: --keep {missing[0]}: no such column (the input has {_listing(names)})"
            )
        for name in sorted(self.required):
            if name not in names:
                raise ColumnError(
                    f"{where}: column {name!r} is missing: the model's schema.input requires "
                    f"{name} ({_schema_type(self.fields.get(name, {}))}); the input has "
                    f"{_listing(names)}"
                )
        if not typed:
            return
        for name, sub in self.fields.items():
            if name not in names:
                continue
            typ = schema.field(name).type
            if not compatible(typ, sub):
                raise ColumnError(
                    f"{where}: column {name!r} is {describe_type(typ)}, but the model's "
                    f"schema.input says {name} is {_schema_type(sub)}: no value of this "
                    f"column can pass{_hint(typ, sub)}; convert the column first"
                )


def _hint(typ: pa.DataType, schema: dict[str, Any]) -> str:
    if schema.get("type") == "integer" and pa.types.is_floating(typ):
        return " (floats are never turned into integers, nor integers into floats)"
    return ""


def _listing(names: list[str], limit: int = 12) -> str:
    if not names:
        return "no columns"
    shown = ", ".join(names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"columns {shown}{more}"


_PROVABLE = {
    "integer": pa.types.is_integer,
    "number": lambda t: pa.types.is_integer(t) or pa.types.is_floating(t),
    "string": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t),
    "boolean": pa.types.is_boolean,
}


class TypeProof:
    """Whether a batch's typed columns already prove every record valid.

    A record schema (converted, draft 7) that says no more than "an object of these fields,
    these required, no others, each of one plain type" (no bounds, enums, patterns or
    formats) is satisfied by every record built from columns of those types with no nulls:
    the compiled validator could only answer "valid" for each of them. Such a batch skips
    the per-row call; any other batch, or a schema with any further keyword, is validated
    row by row. The answers are the same either way (tests/score compare them).
    """

    def __init__(self, record: dict[str, Any]) -> None:
        self.fields: dict[str, tuple[str, bool]] | None = self._provable(record)
        self.required = frozenset(record.get("required", ()))

    @staticmethod
    def _provable(record: dict[str, Any]) -> dict[str, tuple[str, bool]] | None:
        if record.get("type") != "object" or record.get("additionalProperties", True) is not False:
            return None
        if set(record) - {"type", "properties", "required", "additionalProperties"}:
            return None
        fields: dict[str, tuple[str, bool]] = {}
        for name, schema in record.get("properties", {}).items():
            typ = schema.get("type") if isinstance(schema, dict) else None
            if not isinstance(schema, dict) or set(schema) != {"type"}:
                return None
            types = typ if isinstance(typ, list) else [typ]
            plain = [t for t in types if t != "null"]
            if len(plain) != 1 or plain[0] not in _PROVABLE:
                return None
            fields[name] = (plain[0], "null" in types)
        return fields

    def proves(self, columns: dict[str, pa.Array]) -> bool:
        """True when the records built from ``columns`` (name -> the batch's column, NaN
        already made null) are all valid."""
        fields = self.fields
        if fields is None or not self.required <= columns.keys():
            return False
        for name, column in columns.items():
            if name not in fields:
                return False
            typ, nullable = fields[name]
            if not _PROVABLE[typ](column.type):
                return False
            if column.null_count and not nullable and name in self.required:
                return False
        return True
