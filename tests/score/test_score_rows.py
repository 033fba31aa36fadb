"""The row scorer in process: the same answers as catwalk predict, row for row, on every
shipped example; column checks before scoring; CSV cells and JSON lines parsed exactly."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from score_data import EXAMPLES, expected_forest, forest_rows, predict, raising_forest

from catwalk.model import load_model
from catwalk.score.columns import ColumnError, ColumnPlan
from catwalk.score.rows import LINE_COLUMN, RowFailed, RowScorer
from catwalk.spec import load_spec


def scorer(model: Path, keep: tuple[str, ...] = (), **options: Any) -> RowScorer:
    spec = load_spec(model)
    return RowScorer(load_model(spec), ColumnPlan.for_model(spec, keep), **options)


def scored(model: Path, rows: list[dict[str, Any]], keep: tuple[str, ...] = ()) -> list[Any]:
    out, counts = scorer(model, keep).score(pa.RecordBatch.from_pylist(rows))
    assert counts.rows == len(rows) == out.num_rows
    return list(out.to_pylist())


def assert_same(got: list[dict[str, Any]], expected: list[tuple[Any, str | None]]) -> None:
    """Each scored row against catwalk predict's answer for the same input."""
    assert len(got) == len(expected)
    for row, (output, error) in zip(got, expected, strict=True):
        assert row["catwalk_error"] == error
        if error is not None:
            assert all(row[k] is None for k in row if k not in ("id", "catwalk_error"))
            continue
        record = output[0] if isinstance(output, list) else output
        for key, value in record.items():
            assert math.isclose(row[key], value, rel_tol=1e-12), (key, row, record)


RNG_ROWS = [
    {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0},
    {"seed": 7, "seed_version": 3, "mu": 0.0, "sigma": 1.0},  # not in the enum
    {"seed": 8, "seed_version": 1, "mu": 2.5, "sigma": -1.0},  # below the minimum
    {"seed": 2**40, "seed_version": 1, "mu": -3, "sigma": 0.5},  # an int for a number
]


def test_rng_rows_answer_as_predict_does() -> None:
    got = scored(EXAMPLES / "rng", RNG_ROWS)
    assert_same(got, predict(EXAMPLES / "rng", RNG_ROWS))
    assert got[1]["catwalk_error"] == "input.seed_version: 3 is not one of [1, 2]"
    assert got[2]["catwalk_error"].startswith("input.sigma: -1.0 is less than the minimum")


def test_batch_model_rows_are_its_records() -> None:
    got = scored(EXAMPLES / "batch", RNG_ROWS)
    # catwalk predict takes the batch model's input: an array of records, here one each.
    expected = predict(EXAMPLES / "batch", [[r] for r in RNG_ROWS])
    assert [r["catwalk_error"] is None for r in got] == [e is None for _, e in expected]
    for row, (output, _) in zip(got, expected, strict=True):
        if output is not None:
            assert row["score"] == output[0]["score"]
    assert got[1]["catwalk_error"] == "input.seed_version: 3 is not one of [1, 2]"


def test_dataframe_model_rows_are_its_records() -> None:
    rows = [{"x1": 0.5, "x2": -1.0, "x3": 2.0}, {"x1": 1, "x2": 2, "x3": 3}]
    got = scored(EXAMPLES / "dataframe", rows)
    assert_same(got, predict(EXAMPLES / "dataframe", rows))


def test_forest_a_raising_row_gets_the_error_and_the_others_score(tmp_path: Path) -> None:
    model = raising_forest(tmp_path)
    rows = forest_rows()
    got = scored(model, rows, keep=("id",))
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    expected = expected_forest(model, rows)
    assert_same(got, expected)
    assert got[5]["catwalk_error"] == "predict raised ValueError: age 99 is out of this forest"
    assert got[3]["catwalk_error"].startswith("input.bmi: ")
    assert sum(r["catwalk_error"] is None for r in got) == len(rows) - 2


def test_nan_is_a_missing_value_not_a_number() -> None:
    rows = [{"seed": 1, "seed_version": 1, "mu": float("nan"), "sigma": 1.0}]
    (row,) = scored(EXAMPLES / "rng", rows)
    assert row["score"] is None
    assert row["catwalk_error"].startswith("input.mu: ")


def test_integers_stay_integers_and_floats_stay_floats(tmp_path: Path) -> None:
    plan = ColumnPlan.for_model(load_spec(EXAMPLES / "rng"))
    typed = pa.schema(
        [
            ("seed", pa.float64()),
            ("seed_version", pa.int64()),
            ("mu", pa.float64()),
            ("sigma", pa.float64()),
        ]
    )
    with pytest.raises(ColumnError) as caught:
        plan.check(typed, "in.parquet")
    assert str(caught.value) == (
        "in.parquet: column 'seed' is double, but the model's schema.input says seed is "
        "integer: no value of this column can pass (floats are never turned into integers, "
        "nor integers into floats); convert the column first"
    )
    (row,) = scored(EXAMPLES / "rng", [{"seed": 3, "seed_version": 2, "mu": 1, "sigma": 2}])
    assert row["catwalk_error"] is None


def test_column_checks_name_the_column_and_both_types() -> None:
    plan = ColumnPlan.for_model(load_spec(EXAMPLES / "forest"), ("id",))
    names = ["id", "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5"]  # no s6
    schema = pa.schema([(n, pa.float64()) for n in names])
    with pytest.raises(
        ColumnError,
        match=r"^in.parquet: column 's6' is missing: the model's "
        r"schema.input requires s6 \(number\); the input has columns id, age",
    ):
        plan.check(schema, "in.parquet")
    strings = pa.schema(
        [*[(n, pa.float64()) for n in names[:-1]], ("s5", pa.string()), ("s6", pa.float64())]
    )
    with pytest.raises(
        ColumnError, match=r"column 's5' is string, but the model's schema\.input says s5 is number"
    ):
        plan.check(strings, "in.parquet")
    with pytest.raises(ColumnError, match="--keep nope: no such column"):
        ColumnPlan.for_model(load_spec(EXAMPLES / "forest"), ("nope",)).check(schema, "x")
    with pytest.raises(ColumnError, match="the output already has a column 'progression'"):
        ColumnPlan.for_model(load_spec(EXAMPLES / "forest"), ("progression",))


def test_csv_cells_are_the_json_values_they_spell() -> None:
    rows = [
        {"seed": "1", "seed_version": "2", "mu": "0.5", "sigma": "1"},
        {"seed": "1.5", "seed_version": "2", "mu": "0", "sigma": "1"},  # not an integer
        {"seed": "x", "seed_version": "2", "mu": "0", "sigma": "1"},  # not a number at all
    ]
    out, _ = scorer(EXAMPLES / "rng", mode="csv").score(pa.RecordBatch.from_pylist(rows))
    got = out.to_pylist()
    expected = predict(
        EXAMPLES / "rng",
        [
            {"seed": 1, "seed_version": 2, "mu": 0.5, "sigma": 1},
            {"seed": 1.5, "seed_version": 2, "mu": 0, "sigma": 1},
            {"seed": "x", "seed_version": 2, "mu": 0, "sigma": 1},
        ],
    )
    assert_same(got, expected)
    assert got[2]["catwalk_error"] == expected[2][1]


def test_json_lines_are_parsed_as_catwalk_predict_does() -> None:
    lines = [b'{"id": 1, "seed": 1, "seed_version": 2, "mu": 0, "sigma": 1}', b"{seed", b""]
    batch = pa.RecordBatch.from_arrays([pa.array(lines, pa.binary())], names=[LINE_COLUMN])
    out, counts = scorer(EXAMPLES / "rng", ("id",), mode="jsonl").score(batch)
    got = out.to_pylist()
    assert counts.errors == 2
    # A kept key that is no input field has no type to take from model.yml: its JSON text.
    assert got[0]["id"] == "1" and got[0]["catwalk_error"] is None
    assert got[1]["catwalk_error"].startswith("not valid JSON")
    assert got[2]["catwalk_error"] == "empty line (expected one JSON input per line)"


def test_stop_names_the_row() -> None:
    batch = pa.RecordBatch.from_pylist(RNG_ROWS)
    with pytest.raises(RowFailed, match=r"^in.parquet: row 12: input.seed_version: 3 is not"):
        scorer(EXAMPLES / "rng", stop=True).score(batch, "in.parquet", first_row=10)


def test_columns_that_prove_the_schema_skip_no_answer(tmp_path: Path) -> None:
    """Plain typed columns with no nulls prove the forest's records valid: the per-row check
    is skipped for them, and the answers are still catwalk predict's."""
    # Read here, not imported from conftest: another folder's conftest may own that name.
    forest = json.loads((EXAMPLES / "forest" / "test_data.json").read_text())
    FOREST_ROWS = [row["X"] for row in forest]

    forest = scorer(EXAMPLES / "forest")
    batch = pa.RecordBatch.from_pylist(FOREST_ROWS)
    assert forest.records(batch)[3] is True
    got = forest.score(batch)[0].to_pylist()
    assert_same(got, predict(EXAMPLES / "forest", FOREST_ROWS))
    # A null in a required field, an integer column for a number: proven only when valid.
    with_null = pa.RecordBatch.from_pylist([{**FOREST_ROWS[0], "bmi": None}])
    assert forest.records(with_null)[3] is False
    ints = pa.RecordBatch.from_pylist([{k: 1 for k in FOREST_ROWS[0]}])
    assert forest.records(ints)[3] is True
    # rng's schema has an enum and a minimum: never proven by types, always validated.
    assert scorer(EXAMPLES / "rng").proof.fields is None  # type: ignore[union-attr]


def test_a_missing_engine_names_the_extra() -> None:
    from catwalk.score.job import MissingExtra, need

    need("pyarrow", "spark")  # present: no error
    with pytest.raises(
        MissingExtra,
        match=r"^catwalk score needs catwalk_no_such_engine, which "
        r"is not installed: pip install 'catwalk-serve\[ray\]'$",
    ):
        need("catwalk_no_such_engine", "ray")
