"""Scoring datasets with a model: every row validated, rows out = rows in (``catwalk score``).

The Python API for data already in an engine (docs/scoring.md):

- :func:`catwalk.score.engines.spark.score_spark_dataframe` (a Spark DataFrame in, the scored
  DataFrame out, lazily),
- :func:`catwalk.score.engines.ray.score_ray_dataset` (a Ray Dataset in, the scored Dataset
  out, lazily).

Both are importable from here without importing Spark or Ray until called.
"""

from __future__ import annotations

from typing import Any


def score_spark_dataframe(df: Any, model_path: str, **options: Any) -> Any:
    """See :func:`catwalk.score.engines.spark.score_spark_dataframe`."""
    from catwalk.score.engines.spark import score_spark_dataframe as score

    return score(df, model_path, **options)


def score_ray_dataset(ds: Any, model_path: str, **options: Any) -> Any:
    """See :func:`catwalk.score.engines.ray.score_ray_dataset`."""
    from catwalk.score.engines.ray import score_ray_dataset as score

    return score(ds, model_path, **options)
