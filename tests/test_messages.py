"""Messages that used to mislead (issue 12, item 9): counts, skipped steps, numbering, types."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from catwalk.cli import cli


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_every_failing_row_is_counted(model_copy: Callable[[str], Path]) -> None:
    folder = model_copy("wrong_predictions")
    (folder / "model.py").write_text(
        "class Model:\n"
        "    def __init__(self, path):\n        pass\n"
        "    def load_test_data(self, path):\n"
        "        X = [{'x': i, 'label': 'a'} for i in range(20)]\n"
        "        return X, [dict(r) for r in X]\n"
        "    def predict(self, X):\n"
        "        return {'x': X['x'] + 0.5, 'label': X['label']}\n"
    )
    code, output = run("test-model", "-m", str(folder))
    assert code == 1
    assert "... and 15 more (20 problems in all)" in output, output


def test_the_summary_says_later_steps_were_not_run(model_dir: Callable[[str], Path]) -> None:
    code, output = run("test-model", "-m", str(model_dir("import_error")))
    assert code == 1
    assert output.splitlines()[-1] == (
        "test-model: 1 of 4 step(s) failed (4. model loads); 3 later step(s) not run"
    )


def test_a_dataframe_model_returning_an_array_is_told_so(model_copy: Callable[[str], Path]) -> None:
    pytest.importorskip("pandas")
    folder = model_copy("dataframe_echo")
    source = (folder / "model.py").read_text()
    (folder / "model.py").write_text(
        source.replace(
            'return pd.DataFrame({"x": X["x"] * 2, "label": X["label"]})',
            'return pd.DataFrame({"x": X["x"] * 2, "label": X["label"]}).to_numpy()',
        )
    )
    code, output = run("test-model", "-m", str(folder))
    assert code == 1
    assert (
        "predict must return a pandas DataFrame for io_type PANDAS_DATA_FRAME, got numpy.ndarray"
        in output
    ), output


@pytest.mark.slow
def test_catwalk_test_numbers_each_step_once(model_dir: Callable[[str], Path]) -> None:
    code, output = run("test", "-m", str(model_dir("echo")), "--debug")
    assert code == 0, output
    numbers = [
        line.split("] ", 1)[1].split(".", 1)[0]
        for line in output.splitlines()
        if line.startswith("[") and line.split("] ", 1)[1][:1].isdigit()
    ]
    assert numbers == [str(n) for n in range(1, 10)], numbers
