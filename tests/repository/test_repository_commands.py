"""The commands on a repository, in process (no server): test-model, predict, score."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result
from repo_fixtures import SHOP

from catwalk.cli import cli


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_test_model_checks_every_model_a_block_each() -> None:
    result = run("test-model", "-m", str(SHOP))
    assert result.exit_code == 0, result.output
    for ref in ("price@0.1", "scale@1.9", "scale@1.10"):
        assert f"test-model {ref}: all 7 step(s) passed" in result.output
    assert "test-model: 3 of 3 model(s) passed" in result.output


def test_test_model_fails_when_one_model_fails(make_repo: Callable[..., Path]) -> None:
    root = make_repo(("good", "a", "1", {}), ("bad", "b", "1", {"raise": True}))
    result = run("test-model", "-m", str(root))
    assert result.exit_code == 1
    assert "test-model a@1: all 7 step(s) passed" in result.output
    assert "test-model b@1: 1 of 7 step(s) failed (7. predictions)" in result.output
    assert "test-model: 1 of 2 model(s) passed; failed: test-model b@1" in result.output


def test_predict_needs_a_model_of_a_repository() -> None:
    result = run("predict", "-m", str(SHOP), "--input", '{"x": 2}')
    assert result.exit_code == 1
    assert "name the model to run with --model NAME or --model NAME@VERSION" in result.output
    result = run("predict", "-m", str(SHOP), "--model", "scale", "--input", '{"x": 2}')
    assert (result.exit_code, json.loads(result.stdout)) == (0, {"y": 4})  # 1.10 by PEP 440
    result = run("predict", "-m", str(SHOP), "--model", "scale@1.9", "--input", '{"x": 2}')
    assert json.loads(result.stdout) == {"y": 2}
    result = run("predict", "-m", str(SHOP), "--model", "scale@7", "--input", '{"x": 2}')
    assert result.exit_code == 1
    assert "--model scale@7: scale has no version '7'" in result.output
    assert "(versions: 1.9, 1.10)" in result.output


def test_a_model_folder_with_a_model_that_is_not_it() -> None:
    result = run("predict", "-m", str(SHOP / "price"), "--model", "scale", "--input", "{}")
    assert result.exit_code == 1
    assert f"{SHOP / 'price'} is the model price@0.1, not scale" in result.output


def test_score_takes_a_model_of_a_repository(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"x": 1}\n{"x": 3}\n')
    out = tmp_path / "out"
    result = run(
        "score", "-m", str(SHOP), "--model", "price", "--input", str(rows),
        "--output", str(out), "--format", "jsonl",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    scored = [
        json.loads(line) for f in sorted(out.glob("*.jsonl")) for line in f.read_text().splitlines()
    ]
    assert [row["y"] for row in scored] == [10, 30]
