"""Outputs -> JSON values, and comparing predictions with expected outputs."""

from __future__ import annotations

import datetime as dt
import math
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd
import pytest

from catwalk.errors import OutputError
from catwalk.normalize import first_difference, to_json


def test_plain_json_is_unchanged() -> None:
    value = {"a": [1, 2.5, "x", True, None], "b": {"c": False}}
    assert to_json(value) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (np.float64(0.25), 0.25),
        (np.float32(0.5), 0.5),
        (np.int64(7), 7),
        (np.int8(-3), -3),
        (np.uint16(9), 9),
        (np.bool_(True), True),
        (np.str_("s"), "s"),
    ],
)
def test_numpy_scalars(value: Any, expected: Any) -> None:
    got = to_json(value)
    assert got == expected
    assert type(got) is type(expected)


def test_numpy_arrays() -> None:
    got = to_json({"m": np.array([[1, 2], [3, 4]], dtype=np.int32), "v": np.arange(3.0)})
    assert got == {"m": [[1, 2], [3, 4]], "v": [0.0, 1.0, 2.0]}
    assert type(got["m"][0][0]) is int
    assert to_json(np.datetime64("2024-01-02")) == "2024-01-02"
    assert to_json(np.datetime64("NaT")) is None


def test_pandas() -> None:
    frame = pd.DataFrame(
        {"x": [1.5, np.nan], "n": [1, 2], "t": pd.to_datetime(["2024-01-02", None])}
    )
    assert to_json(frame) == [
        {"x": 1.5, "n": 1, "t": "2024-01-02T00:00:00"},
        {"x": None, "n": 2, "t": None},
    ]
    assert to_json(pd.Series([1, 2], dtype="Int64").reindex([0, 1, 2])) == [1, 2, None]
    assert to_json(pd.Timestamp("2024-01-02 03:04:05")) == "2024-01-02T03:04:05"
    assert to_json(pd.NA) is None
    assert to_json({"t": pd.NaT}) == {"t": None}


def test_tuples_dates_and_mappings() -> None:
    assert to_json((1, (2, 3))) == [1, [2, 3]]
    assert to_json(dt.date(2024, 1, 2)) == "2024-01-02"
    assert to_json(OrderedDict(a=1)) == {"a": 1}
    assert to_json({1: "a", np.int64(2): "b"}) == {"1": "a", "2": "b"}


def test_nan_becomes_null() -> None:
    assert to_json({"a": float("nan"), "b": [np.float64("nan")]}) == {"a": None, "b": [None]}


@pytest.mark.parametrize("infinity", [math.inf, -math.inf, np.float64("inf")])
def test_infinity_is_an_error_naming_the_field(infinity: Any) -> None:
    with pytest.raises(OutputError, match=r"^output\.scores\[1\]: -?inf cannot be represented"):
        to_json({"scores": [0.5, infinity]})


def test_unsupported_type_is_an_error() -> None:
    with pytest.raises(OutputError, match=r"^output\.model: value of type object cannot be"):
        to_json({"model": object()})
    with pytest.raises(OutputError, match=r"^output: value of type set"):
        to_json({1, 2})
    with pytest.raises(OutputError, match=r"mapping key \(1, 2\) is not a string"):
        to_json({(1, 2): 3})


def test_first_difference_equal() -> None:
    assert first_difference({"a": [1, 2.0], "b": "x"}, {"a": [1.0, 2], "b": "x"}, 1e-9) is None
    assert first_difference(None, None, 1e-9) is None


def test_first_difference_tolerance() -> None:
    assert first_difference(1.0, 1.0 + 1e-12, 1e-9) is None
    assert first_difference({"p": 1.0}, {"p": 1.001}, 1e-9) == "p: expected 1.0, got 1.001"
    assert first_difference({"p": 1.0}, {"p": 1.001}, 1e-2) is None
    # Relative, not absolute: zero equals only zero.
    assert first_difference(0.0, 1e-300, 1e-9) == "value: expected 0.0, got 1e-300"


def test_bool_is_not_a_number() -> None:
    assert first_difference({"a": 1}, {"a": True}, 1e-9) == "a: expected 1, got True"
    assert first_difference(False, 0, 1e-9) == "value: expected False, got 0"


def test_missing_and_extra_keys() -> None:
    assert first_difference({"a": 1, "b": 2}, {"a": 1}, 1e-9) == "b: missing from the prediction"
    assert first_difference({"a": 1}, {"a": 1, "c": 3}, 1e-9) == "c: not expected, but predicted"
    assert first_difference({"o": {"a": 1}}, {"o": {}}, 1e-9) == "o.a: missing from the prediction"


def test_lists() -> None:
    assert first_difference([1, 2], [1, 2, 3], 1e-9) == "value: expected 2 items, got 3"
    assert first_difference({"l": [1, 2]}, {"l": [1]}, 1e-9) == "l: expected 2 items, got 1"
    assert first_difference([{"a": 1}, {"a": 2}], [{"a": 1}, {"a": 3}], 1e-9) == (
        "[1].a: expected 2, got 3"
    )


def test_type_mismatch() -> None:
    assert first_difference({"a": "1"}, {"a": 1}, 1e-9) == "a: expected '1', got 1"
    assert first_difference([1], {"a": 1}, 1e-9) == "value: expected [1], got {'a': 1}"
