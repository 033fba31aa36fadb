"""``catwalk score --engine ray`` and the Dataset API on a real local Ray instance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from score_data import (
    EXAMPLES,
    check_missing_requirement,
    score,
    score_forest,
)

pytestmark = pytest.mark.slow


def test_forest_on_ray_answers_as_predict_does(ray_local: Any, tmp_path: Path) -> None:
    result, args = score_forest(tmp_path, "--engine", "ray", "--concurrency", "2")
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
    check_missing_requirement(tmp_path, "--engine", "ray", "--concurrency", "1")
