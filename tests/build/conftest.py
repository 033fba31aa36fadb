"""Fixtures for the image tests: copies of the example models to write into.

(The engine, registry and images of the ``docker``-marked tests are session fixtures in
test_image_e2e.py: outside CI they skip when no engine answers, saying how to get one; under
``CI=true`` they fail instead, so CI can never pass by skipping them.)
"""

from __future__ import annotations

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
