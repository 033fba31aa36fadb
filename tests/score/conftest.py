"""Fixtures for catwalk score: one real SparkSession (local[2]) and one real local Ray per
test session (the shared data and helpers are in score_data.py)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from requires import unavailable


def need(module: str) -> Any:
    """Import an engine; skip without it, except under CI=true (never passes by skipping)."""
    try:
        return __import__(module)
    except ImportError:
        unavailable(f"{module} is not installed (pip install -e '.[spark,ray]')")


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local[2] SparkSession for every Spark test (starting a JVM costs seconds)."""
    need("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        unavailable("no java: scripts/install-system-deps.sh java installs it")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("catwalk-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    """One local Ray instance (2 CPUs) for every Ray test."""
    ray = need("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()
