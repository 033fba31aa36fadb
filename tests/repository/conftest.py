"""Fixtures of tests/repository (the builders live in repo_fixtures)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from repo_fixtures import add_model


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """``make_repo(("a", "scale", "1.0", {"factor": 2}), ...)`` -> a repository folder."""

    def make(*models: tuple[str, str, str, dict[str, Any]], config: str | None = None) -> Path:
        root = tmp_path / "repo"
        root.mkdir()
        for folder, name, version, settings in models:
            add_model(root, folder, name, version, **settings)
        if config is not None:
            (tmp_path / "application.yml").write_text(config)
        return root

    return make
