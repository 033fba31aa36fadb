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
