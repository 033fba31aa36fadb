"""The scikit-learn tutorial: train.py, then test-model on what it produced."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from catwalk.cli import cli

TUTORIAL = Path(__file__).resolve().parents[1] / "tutorials" / "sklearn"


@pytest.mark.slow  # trains the tutorial's model
def test_train_then_test_model(tmp_path: Path) -> None:
    copy = tmp_path / "sklearn"
    shutil.copytree(
        TUTORIAL, copy, ignore=shutil.ignore_patterns("*.joblib", "test_data.json", "__pycache__")
    )
    # Two trainings side by side: into the copy's model folder, and a second one to show that
    # training is deterministic (same test data, bit for bit).
    targets = [copy / "model", tmp_path / "again"]
    procs = [
        subprocess.Popen(
            [sys.executable, str(copy / "train.py"), str(target)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for target in targets
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
    assert (copy / "model" / "iris.joblib").is_file()
    data = [(target / "test_data.json").read_text() for target in targets]
    assert data[0] == data[1]
    rows = json.loads(data[0])
    assert len(rows) == 30
    assert {row["y"]["species"] for row in rows} == {"setosa", "versicolor", "virginica"}

    result = CliRunner().invoke(cli, ["test-model", "-m", str(copy / "model")])
    assert result.exit_code == 0, result.output
    assert "30 prediction(s) validate and equal y (rel. tolerance 1e-09)" in result.output
