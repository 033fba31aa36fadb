"""``build --sbom`` without the sbom extra says so before building anything (issue 17)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from catwalk.cli import cli

RNG = Path(__file__).resolve().parents[1] / "example_models" / "rng"


def test_a_missing_sbom_extra_is_said_before_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cyclonedx_py", None)  # as if catwalk[sbom] were absent
    # An unreachable engine: had the build started, it would fail on Docker instead.
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["build", "--sbom", "--no-push", "-m", str(RNG)])
    assert result.exit_code == 1, result.output
    assert "needs CycloneDX's generator: pip install 'catwalk[sbom]'" in result.output
    assert "nothing was built" in result.output
    assert "docker" not in result.output.lower().replace("dockerfile", "")
    assert time.monotonic() - started < 10
