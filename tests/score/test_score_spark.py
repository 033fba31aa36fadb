"""``catwalk score --engine spark`` and the DataFrame API on a real local[2] SparkSession."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from score_data import (
    EXAMPLES,
    check_missing_requirement,
    read_output,
    score,
    score_forest,
    write_parquet,
)

pytestmark = pytest.mark.slow


def test_forest_on_spark_answers_as_predict_does(spark: Any, tmp_path: Path) -> None:
    result, _ = score_forest(tmp_path, "--engine", "spark")
    # Once per Python worker: local[2] runs at most two.
    loads = int(result.stderr.split("model loaded ")[1].split(" ")[0])
    assert 1 <= loads <= 2, result.stderr


def test_dataframe_api_and_the_other_examples(spark: Any, tmp_path: Path) -> None:
    from catwalk.score import score_spark_dataframe

    rows = [
        {"id": 1, "seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0},
        {"id": 2, "seed": 1, "seed_version": 3, "mu": 0.0, "sigma": 1.0},
    ]
    df = spark.createDataFrame(rows)
    for name in ("rng", "batch"):
        scored = score_spark_dataframe(df, str(EXAMPLES / name), keep=["id"])
        assert scored.columns == ["id", "score", "catwalk_error"]
        got = sorted((r.asDict() for r in scored.collect()), key=lambda r: r["id"])
        assert got[0]["score"] == pytest.approx(0.9417154046806644, rel=1e-12)
        assert got[0]["catwalk_error"] is None
        assert got[1]["score"] is None
        assert got[1]["catwalk_error"] == "input.seed_version: 3 is not one of [1, 2]"
    frame = spark.createDataFrame([{"x1": 0.5, "x2": -1.0, "x3": 2.0}])
    (row,) = score_spark_dataframe(frame, str(EXAMPLES / "dataframe")).collect()
    assert 0 < row["probability"] < 1 and row["catwalk_error"] is None


def test_missing_column_stops_before_the_job(spark: Any, tmp_path: Path) -> None:
    from catwalk.score import score_spark_dataframe
    from catwalk.score.columns import ColumnError

    df = spark.createDataFrame([{"seed": 0, "seed_version": 2, "mu": 0.0}])
    with pytest.raises(ColumnError, match="column 'sigma' is missing"):
        score_spark_dataframe(df, str(EXAMPLES / "rng"))
    strings = spark.createDataFrame([{"seed": "0", "seed_version": 2, "mu": 0.0, "sigma": 1.0}])
    with pytest.raises(
        ColumnError,
        match=r"column 'seed' is string, but the model's schema\.input says seed is integer",
    ):
        score_spark_dataframe(strings, str(EXAMPLES / "rng"))


def test_stop_refusal_and_overwrite(spark: Any, tmp_path: Path) -> None:
    rows = [{"seed": i, "seed_version": 2, "mu": 0.0, "sigma": 1.0} for i in range(20)]
    rows[7]["sigma"] = -1.0
    data = write_parquet(tmp_path / "in.parquet", rows)
    out = tmp_path / "out"
    args = (
        "-m",
        str(EXAMPLES / "rng"),
        "--engine",
        "spark",
        "--input",
        str(data),
        "--output",
        str(out),
    )
    stopped = score(*args, "--on-error", "stop")
    assert stopped.exit_code == 1
    assert (
        "in.parquet (a batch of it): row 8: input.sigma: -1.0 is less than the minimum"
        in stopped.stderr
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]
    out.mkdir()
    refused = score(*args)
    assert refused.exit_code == 1 and "exists: give --overwrite" in refused.stderr
    done = score(*args, "--overwrite", "--format", "jsonl")
    assert done.exit_code == 0, done.output
    got = read_output(out, "jsonl")
    assert len(got) == 20 and sum(r["catwalk_error"] is not None for r in got) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out"]


def test_a_missing_requirement_is_one_clear_error(spark: Any, tmp_path: Path) -> None:
    result = check_missing_requirement(tmp_path, "--engine", "spark")
    assert "Traceback" not in result.stderr


def test_csv_and_json_lines_on_spark(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("id,seed,seed_version,mu,sigma\n1,3,2,0.5,1\n2,x,2,0,1\n")
    (tmp_path / "in.jsonl").write_text(
        '{"id": 1, "seed": 3, "seed_version": 2, "mu": 0.5, "sigma": 1}\n{"id": 2}\nnot json\n'
    )
    csv_out, jsonl_out = tmp_path / "csv-out", tmp_path / "jsonl-out"
    done = score(
        "-m",
        str(EXAMPLES / "rng"),
        "--engine",
        "spark",
        "--input",
        str(tmp_path / "in.csv"),
        "--output",
        str(csv_out),
        "--keep",
        "id",
    )
    assert done.exit_code == 0, done.output
    got = sorted(read_output(csv_out), key=lambda r: r["id"])
    assert [r["id"] for r in got] == ["1", "2"]  # CSV text, kept untouched
    assert got[0]["catwalk_error"] is None and got[0]["score"] is not None
    assert got[1]["catwalk_error"] == "input.seed: \"x\" is not of type 'integer'"
    done = score(
        "-m",
        str(EXAMPLES / "rng"),
        "--engine",
        "spark",
        "--input",
        str(tmp_path / "in.jsonl"),
        "--output",
        str(jsonl_out),
        "--keep",
        "id",
        "--format",
        "jsonl",
    )
    assert done.exit_code == 0, done.output
    got = read_output(jsonl_out, "jsonl")
    assert len(got) == 3
    assert sum(r["catwalk_error"] is None for r in got) == 1
    assert any(str(r["catwalk_error"]).startswith("not valid JSON") for r in got)
