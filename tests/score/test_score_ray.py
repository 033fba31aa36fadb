"""``catwalk score --engine ray`` and the Dataset API on a real local Ray instance."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from score_data import (
    EXAMPLES,
    by_id,
    expected_forest,
    forest_rows,
    raising_forest,
    read_output,
    score,
    write_parquet,
)

pytestmark = pytest.mark.slow


def test_forest_on_ray_answers_as_predict_does(ray_local: Any, tmp_path: Path) -> None:
    model = raising_forest(tmp_path)
    rows = forest_rows()
    write_parquet(tmp_path / "in" / "a.parquet", rows[:6])
    write_parquet(tmp_path / "in" / "b.parquet", rows[6:])
    out = tmp_path / "out"
    args = (
        "-m",
        str(model),
        "--engine",
        "ray",
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(out),
        "--keep",
        "id",
        "--batch-size",
        "4",
        "--concurrency",
        "2",
    )
    result = score(*args)
    assert result.exit_code == 0, result.output
    got = by_id(read_output(out))
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    for row, (output, error) in zip(got, expected_forest(model, rows), strict=True):
        assert row["catwalk_error"] == error
        assert row["progression"] == (None if output is None else output["progression"])
    assert f"score: {len(rows)} row(s), 2 with errors" in result.stderr
    assert "with 2 worker(s); model loaded 2 time(s)" in result.stderr  # once per actor
    refused = score(*args)
    assert refused.exit_code == 1 and "exists: give --overwrite" in refused.stderr


def test_dataset_api_records_and_stops(ray_local: Any, tmp_path: Path) -> None:
    import ray

    from catwalk.score import score_ray_dataset
    from catwalk.score.columns import ColumnError

    rows = [
        {"id": 1, "seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0},
        {"id": 2, "seed": 1, "seed_version": 3, "mu": 0.0, "sigma": 1.0},
    ]
    ds = ray.data.from_items(rows)
    scored = score_ray_dataset(ds, str(EXAMPLES / "batch"), keep=["id"], concurrency=1)
    got = sorted(scored.take_all(), key=lambda r: r["id"])
    assert got[0]["score"] == pytest.approx(0.9417154046806644, rel=1e-12)
    assert got[0]["catwalk_error"] is None
    assert got[1]["score"] is None
    assert got[1]["catwalk_error"] == "input.seed_version: 3 is not one of [1, 2]"
    with pytest.raises(ColumnError, match="column 'sigma' is missing"):
        score_ray_dataset(
            ray.data.from_items([{"seed": 0, "seed_version": 2, "mu": 0.0}]), str(EXAMPLES / "rng")
        )


def test_a_missing_requirement_is_one_clear_error(ray_local: Any, tmp_path: Path) -> None:
    model = tmp_path / "rng"
    shutil.copytree(EXAMPLES / "rng", model)
    (model / "requirements.txt").write_text("catwalk-no-such-package>=1\n")
    data = write_parquet(
        tmp_path / "in.parquet", [{"seed": 1, "seed_version": 2, "mu": 0.0, "sigma": 1.0}]
    )
    result = score(
        "-m",
        str(model),
        "--engine",
        "ray",
        "--input",
        str(data),
        "--output",
        str(tmp_path / "out"),
        "--concurrency",
        "1",
    )
    assert result.exit_code == 1
    assert (
        "Error: model RNGModel 0.0.1: package 'catwalk-no-such-package' of its "
        "requirements.txt is not installed in this worker's Python" in result.stderr
    )
    assert not (tmp_path / "out").exists()
