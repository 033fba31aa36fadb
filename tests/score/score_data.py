"""Data and helpers the catwalk score tests share: example rows written as Parquet, the
forest's inputs (and a copy of the forest that raises), and catwalk predict's answers to compare
with. A module of its own (not conftest.py): every test folder has a conftest, and
``from conftest import`` picks whichever was imported last."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from catwalk.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "example_models"


def write_parquet(path: Path, rows: list[dict[str, Any]], **kwargs: Any) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, **kwargs)
    return path


def read_output(folder: Path, fmt: str = "parquet") -> list[dict[str, Any]]:
    """Every row of an output folder (its part files in name order)."""
    files = sorted(p for p in folder.iterdir() if not p.name.startswith((".", "_")))
    rows: list[dict[str, Any]] = []
    for file in files:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            rows += pq.read_table(file).to_pylist()
        elif fmt == "jsonl":
            rows += [json.loads(line) for line in file.read_text().splitlines()]
        else:
            import csv

            with open(file, newline="") as f:
                rows += list(csv.DictReader(f))
    return rows


def score(*args: str) -> Result:
    """``catwalk score`` in this process (the session's Spark / Ray are the active ones)."""
    return CliRunner().invoke(cli, ["score", "--no-install", *args], catch_exceptions=False)


def predict(model: Path, inputs: list[Any]) -> list[tuple[Any, str | None]]:
    """``catwalk predict``'s answer for each input: (output, None) or (None, its error)."""
    text = "".join(json.dumps(x) + "\n" for x in inputs)
    result = CliRunner().invoke(
        cli,
        ["predict", "--no-install", "-m", str(model), "--on-error", "skip"],
        input=text,
        catch_exceptions=False,
    )
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    errors: dict[int, str] = {}
    for line in result.stderr.splitlines():
        if line.startswith("line "):
            number, _, message = line[5:].partition(": ")
            errors[int(number) - 1] = message
    assert len(outputs) == len(inputs), result.output
    return [(None if i in errors else out, errors.get(i)) for i, out in enumerate(outputs)]


FOREST_ROWS = [row["X"] for row in json.loads((EXAMPLES / "forest" / "test_data.json").read_text())]


def forest_rows() -> list[dict[str, Any]]:
    """The forest's test inputs with an id, and rows that fail: out of the schema (a
    missing value), and one (age 99) that the raising copy's model raises on."""
    rows = [{"id": i, **x} for i, x in enumerate(FOREST_ROWS)]
    rows[3] = {**rows[3], "bmi": None}  # a null in a required number
    rows[5] = {**rows[5], "age": 99.0}  # the raising copy raises on this one
    return rows


def raising_forest(folder: Path) -> Path:
    """A copy of the forest example whose predict_batch raises when a row's age is 99."""
    target = folder / "forest"
    shutil.copytree(EXAMPLES / "forest", target, ignore=shutil.ignore_patterns("__pycache__"))
    code = (target / "model.py").read_text()
    code = code.replace(
        "    def predict_batch(self, Xs):\n",
        "    def predict_batch(self, Xs):\n"
        "        if any(X['age'] == 99 for X in Xs):\n"
        "            raise ValueError('age 99 is out of this forest')\n",
    )
    (target / "model.py").write_text(code)
    return target


def expected_forest(model: Path, rows: list[dict[str, Any]]) -> list[tuple[Any, str | None]]:
    """catwalk predict's answers for the forest rows as JSON lines (a null column value is a
    JSON null there: the field is required, so both say it is not a number)."""
    return predict(model, [{k: v for k, v in r.items() if k != "id"} for r in rows])


def by_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: r["id"])


def score_forest(
    tmp_path: Path, *options: str, ordered: bool = False, **parquet: Any
) -> tuple[Result, tuple[str, ...]]:
    """The raising forest's rows in two Parquet files through ``catwalk score`` with
    ``options`` (an engine, a concurrency): every row comes out with its own error or its
    own output, as catwalk predict gives them (in input order where ``ordered``). Returns the
    result and the command's arguments (to run it again)."""
    model = raising_forest(tmp_path)
    rows = forest_rows()
    write_parquet(tmp_path / "in" / "a.parquet", rows[:6], **parquet)
    write_parquet(tmp_path / "in" / "b.parquet", rows[6:], **parquet)
    out = tmp_path / "out"
    args = (
        *("-m", str(model), "--input", str(tmp_path / "in"), "--output", str(out)),
        *("--keep", "id", "--batch-size", "4", *options),
    )
    result = score(*args)
    assert result.exit_code == 0, result.output
    got = read_output(out) if ordered else by_id(read_output(out))
    assert [r["id"] for r in got] == [r["id"] for r in rows]
    for row, (output, error) in zip(got, expected_forest(model, rows), strict=True):
        assert row["catwalk_error"] == error
        assert row["progression"] == (None if output is None else output["progression"])
    assert f"score: {len(rows)} row(s), 2 with errors" in result.stderr
    return result, args


def check_missing_requirement(tmp_path: Path, *options: str) -> Result:
    """A model whose requirements.txt names a package the engine's workers lack: one clear
    error naming the package, and no output."""
    model = tmp_path / "rng"
    shutil.copytree(EXAMPLES / "rng", model)
    (model / "requirements.txt").write_text("catwalk-no-such-package>=1\n")
    data = write_parquet(
        tmp_path / "in.parquet", [{"seed": 1, "seed_version": 2, "mu": 0.0, "sigma": 1.0}]
    )
    result = score(
        *("-m", str(model), "--input", str(data), "--output", str(tmp_path / "out"), *options)
    )
    assert result.exit_code == 1
    assert (
        "Error: model RNGModel 0.0.1: package 'catwalk-no-such-package' of its "
        "requirements.txt is not installed in this worker's Python" in result.stderr
    )
    assert not (tmp_path / "out").exists()
    return result
