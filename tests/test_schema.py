"""catwalk's validation rules for OpenAPI 3.0 schemas (the product's contract)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from catwalk.schema import SchemaValidator, to_json_schema


def validator(schema: dict[str, Any]) -> SchemaValidator:
    problems: list[str] = []
    converted = to_json_schema(schema, "schema", problems)
    assert problems == []
    return SchemaValidator(converted)


def errors(schema: dict[str, Any], value: Any) -> list[str]:
    return validator(schema).errors(value, "input")


def one(prop: dict[str, Any]) -> dict[str, Any]:
    """An object schema with the single property ``a``."""
    return {"type": "object", "properties": {"a": prop}}


def test_listed_properties_are_required_by_default() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "string"}}}
    assert errors(schema, {"a": 1, "b": "x"}) == []
    assert errors(schema, {"a": 1}) == ['input: "b" is a required property']


def test_own_required_list_wins() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "string"}},
        "required": ["a"],
    }
    assert errors(schema, {"a": 1}) == []
    assert errors(schema, {"b": "x"}) == ['input: "a" is a required property']
    schema["required"] = []
    assert errors(schema, {}) == []


def test_unlisted_properties_are_rejected() -> None:
    (message,) = errors(one({"type": "number"}), {"a": 1, "extra": 2})
    assert message.startswith("input: Additional properties are not allowed")
    assert message.endswith('("extra" was unexpected)')


def test_additional_properties() -> None:
    schema = one({"type": "number"})
    schema["additionalProperties"] = True
    assert errors(schema, {"a": 1, "extra": [1]}) == []
    schema["additionalProperties"] = {"type": "string"}
    assert errors(schema, {"a": 1, "extra": "x"}) == []
    assert errors(schema, {"a": 1, "extra": 2}) == ["input.extra: 2 is not of type 'string'"]


def test_nullable() -> None:
    assert errors(one({"type": "number"}), {"a": None}) == ["input.a: null is not of type 'number'"]
    assert errors(one({"type": "number", "nullable": True}), {"a": None}) == []
    assert errors(one({"type": "string", "enum": ["x"], "nullable": True}), {"a": None}) == []
    nullable_object = {"type": "object", "nullable": True, "properties": {"b": {"type": "number"}}}
    assert errors(one(nullable_object), {"a": None}) == []
    assert errors(one(nullable_object), {"a": {"b": 1}}) == []


@pytest.mark.parametrize("value", [1, -3, 0, 10**20, 2.0])
def test_integer_accepts_whole_numbers(value: Any) -> None:
    assert errors(one({"type": "integer"}), {"a": value}) == []


@pytest.mark.parametrize("value", [1.5, True, False, "1", None])
def test_integer_rejects(value: Any) -> None:
    assert errors(one({"type": "integer"}), {"a": value}) == [
        f"input.a: {json.dumps(value)} is not of type 'integer'"
    ]


@pytest.mark.parametrize("value", [1, 1.5, -0.0, 10**20])
def test_number_accepts_ints_and_floats(value: Any) -> None:
    assert errors(one({"type": "number"}), {"a": value}) == []


@pytest.mark.parametrize("value", [True, False, "1.5", [1]])
def test_number_rejects_booleans_and_others(value: Any) -> None:
    assert errors(one({"type": "number"}), {"a": value}) == [
        f"input.a: {json.dumps(value)} is not of type 'number'"
    ]


def test_error_message_format() -> None:
    assert errors(one({"type": "number"}), {"a": "one"}) == [
        """input.a: "one" is not of type 'number'"""
    ]


def test_boolean_and_string_types() -> None:
    assert errors(one({"type": "boolean"}), {"a": 1}) == ["input.a: 1 is not of type 'boolean'"]
    assert errors(one({"type": "boolean"}), {"a": False}) == []
    assert errors(one({"type": "string"}), {"a": 5}) == ["input.a: 5 is not of type 'string'"]


def test_enum() -> None:
    schema = one({"type": "string", "enum": ["red", "green"]})
    assert errors(schema, {"a": "red"}) == []
    assert errors(schema, {"a": "blue"}) == ['input.a: "blue" is not one of ["red", "green"]']


def test_minimum_maximum() -> None:
    schema = one({"type": "number", "minimum": 0, "maximum": 1})
    assert errors(schema, {"a": 0}) == []
    assert errors(schema, {"a": 1}) == []
    assert errors(schema, {"a": -0.5}) == ["input.a: -0.5 is less than the minimum of 0"]
    assert errors(schema, {"a": 1.5}) == ["input.a: 1.5 is greater than the maximum of 1"]


def test_exclusive_bounds_openapi_30_boolean_form() -> None:
    schema = one(
        {
            "type": "number",
            "minimum": 0,
            "exclusiveMinimum": True,
            "maximum": 1,
            "exclusiveMaximum": True,
        }
    )
    assert errors(schema, {"a": 0.5}) == []
    assert errors(schema, {"a": 0}) == ["input.a: 0 is less than or equal to the minimum of 0"]
    assert errors(schema, {"a": 1}) == ["input.a: 1 is greater than or equal to the maximum of 1"]
    inclusive = one({"type": "number", "minimum": 0, "exclusiveMinimum": False})
    assert errors(inclusive, {"a": 0}) == []


def test_string_lengths() -> None:
    schema = one({"type": "string", "minLength": 2, "maxLength": 3})
    assert errors(schema, {"a": "ab"}) == []
    assert errors(schema, {"a": "a"}) == ['input.a: "a" is too short (at least 2 characters)']
    assert errors(schema, {"a": "abcd"}) == ['input.a: "abcd" is too long (at most 3 characters)']


def test_array_lengths() -> None:
    schema = one({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 2})
    assert errors(schema, {"a": [1]}) == []
    assert errors(schema, {"a": []}) == ["input.a: [] is too short (at least 1 item)"]
    assert errors(schema, {"a": [1, 2, 3]}) == ["input.a: [1, 2, 3] is too long (at most 2 items)"]
    assert errors(schema, {"a": [1, "x"]}) == ["""input.a[1]: "x" is not of type 'integer'"""]


def test_int32_bounds() -> None:
    schema = one({"type": "integer", "format": "int32"})
    assert errors(schema, {"a": 2**31 - 1}) == []
    assert errors(schema, {"a": -(2**31)}) == []
    assert errors(schema, {"a": 2**31}) == [
        "input.a: 2147483648 is greater than the maximum of 2147483647"
    ]
    assert errors(schema, {"a": -(2**31) - 1}) == [
        "input.a: -2147483649 is less than the minimum of -2147483648"
    ]


def test_int32_keeps_a_tighter_bound() -> None:
    schema = one({"type": "integer", "format": "int32", "minimum": 0})
    assert errors(schema, {"a": -1}) == ["input.a: -1 is less than the minimum of 0"]


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date", "2024-02-29", "2023-02-29"),
        ("email", "someone@example.com", "someone"),
        ("uuid", "12345678-1234-5678-1234-567812345678", "not-a-uuid"),
        ("date-time", "2024-01-31T12:00:00Z", "yesterday"),
    ],
)
def test_checked_formats(fmt: str, good: str, bad: str) -> None:
    schema = one({"type": "string", "format": fmt})
    assert errors(schema, {"a": good}) == []
    assert errors(schema, {"a": bad}) == [f'input.a: "{bad}" is not a valid {fmt}']


def test_unknown_formats_are_annotations() -> None:
    assert errors(one({"type": "string", "format": "password"}), {"a": "x"}) == []
    assert errors(one({"type": "number", "format": "double"}), {"a": 1.5}) == []


def test_nested_objects_and_arrays_name_the_path() -> None:
    schema = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"x": {"type": "number"}, "tags": {"type": "object"}},
                    "required": ["x"],
                },
            }
        },
    }
    good = {"items": [{"x": 1}, {"x": 2, "tags": {}}]}
    assert errors(schema, good) == []
    bad = {"items": [{"x": 1}, {"x": 2}, {"x": "three"}]}
    assert errors(schema, bad) == ["""input.items[2].x: "three" is not of type 'number'"""]


def test_every_failing_field_is_reported() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}
    assert errors(schema, {"a": "x", "b": "y"}) == [
        """input.a: "x" is not of type 'number'""",
        """input.b: "y" is not of type 'number'""",
    ]


def test_message_length_is_capped() -> None:
    (message,) = errors(one({"type": "string", "enum": ["x"]}), {"a": "y" * 1000})
    # The value quoted is shortened to 80 characters, the whole message to 200.
    assert message == 'input.a: "' + "y" * 76 + '... is not one of ["x"]'
    (message,) = errors(one({"type": "string", "pattern": "^" + "x" * 300}), {"a": "y"})
    assert len(message) == 200
    assert message.endswith("...")


def test_values_are_shown_as_json_not_python() -> None:
    schema = one({"type": "integer"})
    assert errors(schema, {"a": None}) == ["input.a: null is not of type 'integer'"]
    assert errors(schema, {"a": True}) == ["input.a: true is not of type 'integer'"]
    assert errors(schema, {"a": {"b": [None, False, "é"]}}) == [
        """input.a: {"b": [null, false, "é"]} is not of type 'integer'"""
    ]
    nullable = one({"type": "integer", "nullable": True})
    assert errors(nullable, {"a": "x"}) == ["""input.a: "x" is not of type 'integer' or 'null'"""]


def test_every_missing_property_is_named_once() -> None:
    schema = {"type": "object", "properties": {k: {"type": "number"} for k in "abc"}}
    assert errors(schema, {"b": 1}) == [
        'input: "a" is a required property',
        'input: "c" is a required property',
    ]


def test_unexpected_properties_are_listed_as_json() -> None:
    assert errors(one({"type": "number"}), {"a": 1, "x": 1, "y": 2}) == [
        'input: Additional properties are not allowed ("x", "y" were unexpected)'
    ]


def test_pattern_and_const_like_messages() -> None:
    schema = one({"type": "string", "pattern": "^[a-z]+$"})
    assert errors(schema, {"a": "A1"}) == ['input.a: "A1" does not match the pattern ^[a-z]+$']
    schema = one({"type": "string", "minLength": 1})
    assert errors(schema, {"a": ""}) == ['input.a: "" is too short (at least 1 character)']


def test_number_of_messages_is_capped() -> None:
    schema = {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "number"}}}}
    found = errors(schema, [{"a": "x"}] * 25)
    assert len(found) == 11
    assert found[-1] == "... and 15 more problem(s)"


def test_top_level_type_errors() -> None:
    schema = one({"type": "number"})
    assert errors(schema, [1]) == ["input: [1] is not of type 'object'"]
    assert errors(schema, None) == ["input: null is not of type 'object'"]


def test_valid_value_is_fast_path() -> None:
    v = validator(one({"type": "number"}))
    assert v.errors({"a": 1}, "input") == []
    # The slow explaining validator is only built once something fails.
    assert v._slow is None
    v.errors({"a": "x"}, "input")
    assert v._slow is not None


def test_messages_follow_row_order() -> None:
    schema = {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "number"}}}}
    found = errors(schema, [{"a": "x"}] * 12)
    assert found[:3] == [
        """input[0].a: "x" is not of type 'number'""",
        """input[1].a: "x" is not of type 'number'""",
        """input[2].a: "x" is not of type 'number'""",
    ]


def test_multiple_of() -> None:
    schema = one({"type": "number", "multipleOf": 0.5})
    assert errors(schema, {"a": 1.5}) == []
    assert errors(schema, {"a": 1.3}) == ["input.a: 1.3 is not a multiple of 0.5"]


def test_multiple_of_with_an_overflowing_quotient_is_decided_exactly() -> None:
    # fastjsonschema gives up ("inifinity reached") when value / multipleOf overflows a float:
    # the exact check decides, and its words are the user's.
    schema = one({"type": "number", "multipleOf": 1e-300})
    assert errors(schema, {"a": 1e10}) == []  # 1e10 / 1e-300 = 1e310: a float's inf
    assert errors(schema, {"a": 1.5e-300}) == ["input.a: 1.5e-300 is not a multiple of 1e-300"]
    tenth = one({"type": "number", "multipleOf": 0.1})
    assert errors(tenth, {"a": 1e308}) == []  # as decimals: 1e309 tenths
    for value in (1e308, 1e10, 1.7e308):
        for message in errors(schema, {"a": value}) + errors(tenth, {"a": value}):
            assert "inifinity" not in message
