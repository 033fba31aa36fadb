"""Shared fixtures: the tiny fixture models under tests/models, picked by name."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property-based tests are deterministic (derandomize: the same examples on every run, so a
# CI failure reproduces locally) and bounded. HYPOTHESIS_PROFILE=explore searches further.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=150,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("explore", max_examples=5000, deadline=timedelta(seconds=2))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

TESTS = Path(__file__).resolve().parent
#: The variable that picks where a command runs the model (catwalk.model_env).
ENV_MANAGER_VAR = "CATWALK_ENV_MANAGER"
MODELS = TESTS / "models"
ROOT = TESTS.parent
EXAMPLES = ROOT / "example_models"
#: Files build-prep/deploy-prep write into a model folder: never copied from a checkout.
GENERATED = (
    "Dockerfile",
    ".dockerignore",
    "docker-compose.yml",
    "kubernetes.yml",
    "kserve.yml",
    "__pycache__",
)


# Where the model runs. Most tests run commands in-process (click's CliRunner), where a command
# cannot re-execute itself in the model's own environment: they run with the local manager
# (CATWALK_ENV_MANAGER=local, also inherited by the servers and commands they start). Tests
# marked `model_env` run with catwalk's defaults, the model's own environment: tests/test_envs.py
# and everything under tests/zoo/ (marked here). Set before any fixture of the test is made,
# so a module's server started by its first test gets the same.


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path).resolve()
        if path.is_relative_to(TESTS / "zoo"):
            item.add_marker(pytest.mark.model_env)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("model_env") is not None:
        os.environ.pop(ENV_MANAGER_VAR, None)
    else:
        os.environ[ENV_MANAGER_VAR] = "local"


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


@pytest.fixture
def example_copy(tmp_path: Path) -> Callable[[str], Path]:
    """``example_copy("rng")`` -> a fresh copy of example_models/rng, free to write into."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns(*GENERATED))
        return target

    return copy


@pytest.fixture
def ssl_config() -> Callable[[Path], Path]:
    """``ssl_config(folder)`` -> an application.yml in ``folder`` with SSL on, next to a
    placeholder cert.pem and a mode-600 key.pem (contents never read: rendering tests only)."""

    def write(conf: Path) -> Path:
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "cert.pem").write_text("cert\n")
        (conf / "key.pem").write_text("key\n")
        (conf / "key.pem").chmod(0o600)
        config = conf / "application.yml"
        config.write_text("server:\n  ssl: {enabled: true, cert: cert.pem, key: key.pem}\n")
        return config

    return write


def _build_wheel(where: Path, name: str, requires: tuple[str, ...] = ()) -> Path:
    """Write a minimal pure-Python wheel by hand: no build backend, no index needed."""
    dist_info = f"{name}-0.1.dist-info"
    requires_dist = "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{name}/__init__.py": "ANSWER = 42\n",
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n{requires_dist}"
        ),
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: catwalk-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    wheel = where / f"{name}-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


@pytest.fixture(scope="session")
def build_wheel() -> Callable[..., Path]:
    """``build_wheel(folder, name, requires=())`` -> a hand-made wheel of package ``name``."""
    return _build_wheel
