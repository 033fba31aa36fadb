"""model.yml's schema -> tensors: the table of docs/protocol.md, row by row."""

from __future__ import annotations

from typing import Any

from catwalk.protocol.tensors import side_tensors


def meta(schema: dict[str, Any], items: bool = False) -> list[tuple[str, str, list[int]]]:
    side = side_tensors(schema, "input", items=items)
    return [(t.name, t.datatype, t.shape) for t in side.tensors]


def test_each_type_of_an_object_record_is_one_tensor() -> None:
    schema = {
        "type": "object",
        "properties": {
            "i": {"type": "integer"},
            "i32": {"type": "integer", "format": "int32"},
            "f": {"type": "number"},
            "f32": {"type": "number", "format": "float"},
            "b": {"type": "boolean"},
            "s": {"type": "string", "format": "email"},
            "v": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
            "vi": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
            "free": {"type": "array", "items": {"type": "number"}},
            "vs": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
            "o": {"type": "object", "properties": {"a": {"type": "number"}}},
            "n": {"type": "number", "nullable": True},
            "any": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        },
    }
    assert meta(schema) == [
        ("i", "INT64", [-1]),
        ("i32", "INT32", [-1]),
        ("f", "FP64", [-1]),
        ("f32", "FP32", [-1]),
        ("b", "BOOL", [-1]),
        ("s", "BYTES", [-1]),
        ("v", "FP64", [-1, 3]),
        ("vi", "INT64", [-1, 2]),
        ("free", "BYTES", [-1]),
        ("vs", "BYTES", [-1]),
        ("o", "BYTES", [-1]),
        ("n", "BYTES", [-1]),
        ("any", "BYTES", [-1]),
    ]
    side = side_tensors(schema, "input", items=False)
    assert [t.kind for t in side.tensors] == [
        "int", "int", "float", "float", "bool", "str", "float", "int",
        "json", "json", "json", "json", "json",
    ]  # fmt: skip


def test_required_follows_catwalks_rule() -> None:
    listed = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}
    assert all(t.required for t in side_tensors(listed, "input", items=False).tensors)
    optional = {**listed, "required": ["b"]}
    side = side_tensors(optional, "input", items=False)
    assert [t.required for t in side.tensors] == [False, True]


def test_an_array_side_takes_its_items_as_records() -> None:
    batch = {
        "type": "array",
        "items": {"type": "object", "properties": {"seed": {"type": "integer"}}},
    }
    assert meta(batch, items=True) == [("seed", "INT64", [-1])]
    # One record that is itself an array (an object-input model's output, say): JSON text.
    assert meta(batch, items=False) == [("input", "BYTES", [-1])]


def test_a_record_that_is_not_an_object_is_one_tensor_named_after_its_side() -> None:
    assert meta({"type": "number"}) == [("input", "FP64", [-1])]
    assert meta({"type": "object", "additionalProperties": True}) == [("input", "BYTES", [-1])]
    fixed = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}
    assert meta(fixed) == [("input", "FP64", [-1, 4])]
    side = side_tensors({"type": "string"}, "output", items=False)
    assert [t.metadata() for t in side.tensors] == [
        {"name": "output", "datatype": "BYTES", "shape": [-1]}
    ]
