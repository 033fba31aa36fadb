"""The bounded explainer: what it says about failing values, and that its work is bounded."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest

from catwalk import explain
from catwalk.explain import Explainer, canonical, compile_node, multiple_of, preview
from test_schema import errors, validator

RECORD = {
    "type": "object",
    "properties": {"seed": {"type": "integer"}, "mu": {"type": "number"}},
}
BATCH = {"type": "array", "minItems": 1, "maxItems": 1000, "items": RECORD}


def test_an_array_over_max_items_is_one_message_not_one_per_item() -> None:
    started = time.perf_counter()
    tracemalloc.start()
    found = errors(BATCH, [1] * 500_000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert found == ["input: [" + "1, " * 25 + "1... is too long (at most 1000 items)"]
    assert time.perf_counter() - started < 1
    assert peak < 5 * 2**20  # the old explainer held 1.5 GiB of errors


def test_cheap_bounds_come_before_descending() -> None:
    assert errors(BATCH, []) == ["input: [] is too short (at least 1 item)"]
    schema = {"type": "object", "maxProperties": 2, "additionalProperties": {"type": "string"}}
    assert errors(schema, {str(i): i for i in range(100_000)}) == [
        'input: {"0": 0, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7, "8": 8, "9":'
        "... has too many properties (at most 2)"
    ]
    schema = {"type": "object", "minProperties": 2, "additionalProperties": True}
    assert errors(schema, {"a": 1}) == [
        'input: {"a": 1} does not have enough properties (at least 2)'
    ]
    text = {"type": "string", "maxLength": 3, "format": "email", "pattern": "^a"}
    assert errors(text, "b" * 10) == ['input: "bbbbbbbbbb" is too long (at most 3 characters)']


def test_problems_beyond_the_messages_are_counted_then_the_walk_stops() -> None:
    rows = {"type": "array", "items": {"type": "integer"}}
    found = errors(rows, ["x"] * 500)
    assert len(found) == explain.MAX_MESSAGES + 1
    assert found[-1] == "... and 490 more problem(s)"
    found = errors(rows, ["x"] * 500_000)
    assert found[-1] == "... and more problems (the first 10 are shown)"


def test_the_step_budget_bounds_a_walk_over_valid_items() -> None:
    # Half a million valid items, then one bad one: the walk stops after MAX_STEPS values
    # and fastjsonschema's precise message is used.
    rows = {"type": "array", "items": {"type": "integer"}}
    started = time.perf_counter()
    assert errors(rows, [1] * 500_000 + ["x"]) == ["input[500000]: must be integer"]
    assert time.perf_counter() - started < 1


def test_unique_items_over_objects_is_linear() -> None:
    schema = {"type": "array", "uniqueItems": True, "items": RECORD}
    rows = [{"seed": i, "mu": 0.5} for i in range(4000)]  # 31 s with jsonschema
    started = time.perf_counter()
    assert errors(schema, [*rows, {"seed": "x", "mu": 1}]) == [
        """input[4000].seed: "x" is not of type 'integer'"""
    ]
    (message,) = errors(schema, [*rows, {"mu": 0.5, "seed": 7}])
    assert message.endswith("has non-unique elements")
    assert time.perf_counter() - started < 1


def test_canonical_forms_follow_json_equality() -> None:
    assert canonical(1) == canonical(1.0)
    assert canonical({"a": [1, 2.0]}) == canonical({"a": [1.0, 2]})
    assert canonical(True) != canonical(1)
    assert canonical(["b", 1]) != canonical(True)
    assert canonical([1]) != canonical({"1": 1})
    assert errors({"type": "array", "uniqueItems": True, "items": {}}, [True, 1]) == []
    assert errors({"enum": [1]}, 1.0) == []
    assert errors({"enum": [1]}, True) == ["input: true is not one of [1]"]


@pytest.mark.parametrize(
    ("value", "step", "expected"),
    [
        (10**400, 0.5, True),
        (10**400, 0.3, False),
        (19.01, 0.01, True),
        (1.3, 0.5, False),
        (7, 7, True),
        (2**70 + 1, 2, False),
    ],
)
def test_multiple_of_is_exact_for_any_size(value: Any, step: Any, expected: bool) -> None:
    assert multiple_of(value, step) is expected


def test_multiple_of_a_huge_integer_is_decided_not_a_crash() -> None:
    # fastjsonschema raises OverflowError (10**400 / 0.5): the explainer decides.
    assert errors({"type": "number", "multipleOf": 0.5}, 10**400) == []
    (message,) = errors({"type": "number", "multipleOf": 0.3}, 10**400)
    assert message.startswith("input: 1000000") and message.endswith("is not a multiple of 0.3")


def test_huge_numbers_against_bounds_and_int_formats() -> None:
    (message,) = errors({"type": "integer", "format": "int64"}, 10**4000)
    assert message.endswith("is greater than the maximum of 9223372036854775807")
    assert errors({"type": "number", "minimum": 0.5}, -(10**4000))[0].endswith(
        "is less than the minimum of 0.5"
    )


def test_combinators_say_which_rule_failed() -> None:
    any_of = {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]}
    assert errors(any_of, "abc") == ['input: "abc" is not valid under any of the given schemas']
    one_of = {"oneOf": [{"type": "integer"}, {"type": "number"}]}
    assert errors(one_of, 1) == ["input: 1 is not valid under more than one of the given schemas"]
    assert errors(one_of, 1.5) == []
    not_ = {"type": "integer", "not": {"enum": [3]}}
    assert errors(not_, 3) == ['input: 3 must not be valid under {"enum": [3]}']
    all_of = {"allOf": [{"type": "integer"}, {"minimum": 5}]}
    assert errors(all_of, 3) == ["input: 3 is less than the minimum of 5"]


def test_any_of_over_a_wide_array_is_bounded() -> None:
    schema = {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]}}
    started = time.perf_counter()
    found = errors(schema, ["x"] * 300_000)
    assert found[0] == """input[0]: "x" is not valid under any of the given schemas"""
    assert time.perf_counter() - started < 1


def test_many_unexpected_properties_are_named_up_to_twenty() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": []}
    (message,) = errors(schema, {str(i): 1 for i in range(100_000)})
    assert message.startswith('input: Additional properties are not allowed ("0", "1", ')
    assert len(message) <= explain.MAX_MESSAGE_LEN


def test_preview_builds_only_what_it_shows() -> None:
    huge = [{"a": "x" * 1000}] * 100_000
    started = time.perf_counter()
    shown = preview(huge)
    assert time.perf_counter() - started < 0.01
    assert shown == '[{"a": "' + "x" * 69 + "..."
    assert preview("é") == '"é"'
    assert preview(10**30) == str(10**30)


def test_quiet_checks_share_the_budget() -> None:
    node = compile_node({"anyOf": [{"type": "array", "items": {"type": "string"}}]})
    explainer = Explainer("input")
    assert explainer.valid(node, ["a"] * 10) is True
    assert explainer.steps == 12


def test_rows_of_a_dataframe_model_are_explained_in_one_bounded_walk() -> None:
    rows = validator(RECORD)
    assert rows.rows_errors([{"seed": 1, "mu": 0.5}] * 3, "input") == []
    assert rows.rows_errors([{"seed": 1, "mu": 0.5}, {"seed": "x", "mu": 1}], "input") == [
        """input[1].seed: "x" is not of type 'integer'"""
    ]
    started = time.perf_counter()
    found = rows.rows_errors([{"seed": "x", "mu": 1}] * 300_000, "input")
    assert time.perf_counter() - started < 1  # was one explanation per row
    assert found[-1] == "... and more problems (the first 10 are shown)"


def test_unique_items_follows_json_equality_on_the_fast_path_too() -> None:
    schema = {"type": "array", "uniqueItems": True, "items": {}}
    # fastjsonschema alone takes true for the string "True".
    assert errors(schema, ["True", True]) == []
    assert errors(schema, ["False", False, 0, "0"]) == []
    assert errors(schema, [True, True])[0].endswith("has non-unique elements")
