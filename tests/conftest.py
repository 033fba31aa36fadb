"""Shared fixtures: the tiny fixture models under tests/models, picked by name."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
MODELS = TESTS / "models"
ROOT = TESTS.parent
EXAMPLES = ROOT / "example_models"


@pytest.fixture
def model_dir() -> Callable[[str], Path]:
    """``model_dir("echo")`` -> the absolute path of tests/models/echo."""

    def find(name: str) -> Path:
        path = MODELS / name
        assert path.is_dir(), f"no fixture model named {name!r}"
        return path

    return find


@pytest.fixture
def model_copy(tmp_path: Path) -> Callable[[str], Path]:
    """``model_copy("echo")`` -> a fresh copy of a fixture model, free to modify."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(MODELS / name, target, ignore=shutil.ignore_patterns("__pycache__"))
        return target

    return copy
