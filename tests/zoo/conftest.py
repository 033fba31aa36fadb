"""Fixtures for the zoo: each kind's model is trained once per test session.

``zoo_model("lightgbm")`` -> the path of a freshly trained model folder (shared by the
session's tests: copy it before changing it). The libraries come with the ``zoo`` extra
(``pip install -e '.[dev,zoo]'``); without them the zoo is skipped, except under ``CI=true``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from builders import build_model

#: The module each kind needs (from the ``zoo`` extra).
MODULES = {
    "sklearn_pipeline": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "torch": "torch",
    "onnx": "onnxruntime",
}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true, so not skipping: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def zoo_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            for module in (MODULES[kind], "skl2onnx") if kind == "onnx" else (MODULES[kind],):
                if importlib.util.find_spec(module) is None:
                    _unavailable(f"{module} is not installed: pip install -e '.[dev,zoo]'")
            built[kind] = build_model(kind, tmp_path_factory.mktemp(f"zoo-{kind}") / kind)
        return built[kind]

    return get
