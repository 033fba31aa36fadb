"""Fixtures for the zoo: each kind's model is trained once per test session.

``zoo_model("lightgbm")`` -> the path of a freshly trained model folder (shared by the
session's tests: copy it before changing it). The libraries come with the ``zoo`` extra
(``pip install -e '.[dev,zoo]'``); without them the zoo is skipped, except under ``CI=true``.
They train the models here; the commands then run each model in its own environment, built
from its requirements.txt into ``zoo_envs``' cache (see zoo_envs.py).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from builders import build_model
from zoo_envs import ZooEnvs, zoo_envs_for

from requires import unavailable

#: The module each kind needs (from the ``zoo`` extra).
MODULES = {
    "sklearn_pipeline": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "torch": "torch",
    "onnx": "onnxruntime",
}


@pytest.fixture(scope="session")
def zoo_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            for module in (MODULES[kind], "skl2onnx") if kind == "onnx" else (MODULES[kind],):
                if importlib.util.find_spec(module) is None:
                    unavailable(f"{module} is not installed: pip install -e '.[dev,zoo]'")
            built[kind] = build_model(kind, tmp_path_factory.mktemp(f"zoo-{kind}") / kind)
        return built[kind]

    return get


@pytest.fixture(scope="session")
def zoo_envs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooEnvs]:
    """Where the zoo's commands build the models' environments: one per kind per session."""
    envs = zoo_envs_for(tmp_path_factory.mktemp("zoo-envs"))
    yield envs
    if envs.built_in:
        print(f"\nzoo model environments ({envs.cache}):\n{envs.summary()}")
