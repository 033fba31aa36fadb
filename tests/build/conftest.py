"""Fixtures for the image tests: model copies to write into, and a Docker engine for e2e tests.

Tests marked ``docker`` need an engine. Outside CI they skip when none answers, saying how to
get one; under ``CI=true`` they fail instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "example_models"
GENERATED = ("Dockerfile", ".dockerignore", "docker-compose.yml", "__pycache__")


@pytest.fixture
def example_copy(tmp_path: Path) -> Callable[[str], Path]:
    """``example_copy("rng")`` -> a fresh copy of example_models/rng, free to write into."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns(*GENERATED))
        return target

    return copy


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
