"""``catwalk`` and ``catwalk test-model`` through click's runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import catwalk
from catwalk.cli import cli

CATWALK_DIR = str(Path(catwalk.__file__).resolve().parent)
EXAMPLES = Path(__file__).resolve().parents[1] / "example_models"
COMMANDS = [
    "test-model",
    "test-server",
    "test",
    "serve",
    "predict",
    "build-prep",
    "build",
    "test-image",
]


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_help_lists_every_command() -> None:
    result = run("--help")
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line]
    assert set(COMMANDS) <= set(listed)


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"catwalk, version {catwalk.__version__}"


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_every_example_passes(example: str) -> None:
    result = run("test-model", "-m", str(EXAMPLES / example))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # A model with batching: has step 8 (batched answers equal predict's).
    steps = 8 if "batching:" in (EXAMPLES / example / "model.yml").read_text() else 7
    assert [line.split("]")[0] for line in lines[:steps]] == ["[PASS"] * steps
    assert lines[-1] == f"test-model: all {steps} step(s) passed"


def test_missing_email(model_dir: Callable[[str], Path]) -> None:
    result = run("test-model", "-m", str(model_dir("missing_email")))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    step = lines.index("[FAIL] 2. model.yml: 1 problem")
    # The problem is shown once, in the usual "model.yml: <field>: <problem>" form.
    assert lines[step + 1].strip() == "model.yml: contact.email: required field missing"
    assert "model.yml: model.yml" not in result.output
    assert result.output.splitlines()[-1] == (
        "test-model: 1 of 2 step(s) failed (2. model.yml); 5 later step(s) not run"
    )
    assert "Traceback" not in result.output


def test_wrong_predictions_show_row_field_expected_and_got(
    model_dir: Callable[[str], Path],
) -> None:
    result = run("test-model", "-m", str(model_dir("wrong_predictions")))
    assert result.exit_code == 1
    assert "[FAIL] 7. predictions: row 1: x: expected 2, got 2.5" in result.output
    assert "row 2: x: expected 3, got 3.5" in result.output
    assert "row 0" not in result.output
    assert "Traceback" not in result.output


def test_batch_failures_name_the_row_inside_the_batch(tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    shutil.copytree(EXAMPLES / "batch", folder)
    data = (folder / "test_data.json").read_text()
    (folder / "test_data.json").write_text(data.replace("13.220461882888657", "13.5"))
    result = run("test-model", "-m", str(folder))
    assert result.exit_code == 1
    assert "[FAIL] 7. predictions: row 1: score: expected 13.5, got 13.220461882888657" in (
        result.output
    )


def test_tolerance_option(model_dir: Callable[[str], Path]) -> None:
    # 2 vs 2.5 and 3 vs 3.5 are within a relative tolerance of 25%.
    result = run("test-model", "-m", str(model_dir("wrong_predictions")), "--tolerance", "0.25")
    assert result.exit_code == 0, result.output
    assert run("test-model", "--tolerance", "-1").exit_code == 2


def test_missing_folder(tmp_path: Path) -> None:
    result = run("test-model", "-m", str(tmp_path / "absent"))
    assert result.exit_code == 1
    assert f"{tmp_path / 'absent'}: model folder does not exist" in result.output
    assert "Traceback" not in result.output


def test_model_path_from_environment(model_dir: Callable[[str], Path]) -> None:
    result = run("test-model", env={"MODEL_PATH": str(model_dir("echo"))})
    assert result.exit_code == 0, result.output
    assert str(model_dir("echo")) in result.output


def test_default_model_path_is_cwd(
    model_dir: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(model_dir("missing_email"))
    result = run("test-model", env={"MODEL_PATH": None})
    assert result.exit_code == 1
    assert "contact.email: required field missing" in result.output


@pytest.mark.parametrize(
    ("name", "step", "message"),
    [
        ("unquoted_version", "2. model.yml", 'write it in quotes (version: "1.10")'),
        ("bad_yaml", "2. model.yml", "model.yml: not valid YAML"),
        ("bad_schema", "2. model.yml", "schema.input.properties.x.type: unknown type 'float'"),
        ("dataframe_without_pandas", "3. requirements", "needs pandas listed in requirements"),
        ("import_error", "4. model loads", "No module named 'catwalk_tests_no_such_module'"),
        ("no_model_class", "4. model loads", "defines no class named Model"),
        ("raises_in_init", "4. model loads", "raised FileNotFoundError: weights.bin is missing"),
        ("bad_test_data", "5. test data", "load_test_data: X has 2 rows but y has 1"),
        ("raises_in_predict", "7. predictions", "row 0: predict raised ValueError: cannot predict"),
    ],
)
def test_broken_models_fail_cleanly(
    model_dir: Callable[[str], Path], name: str, step: str, message: str
) -> None:
    result = run("test-model", "-m", str(model_dir(name)))
    assert result.exit_code == 1
    fail_lines = [line for line in result.output.splitlines() if line.startswith("[FAIL]")]
    assert len(fail_lines) == 1
    assert fail_lines[0].startswith(f"[FAIL] {step}: ")
    assert message in result.output
    # The user's traceback may be shown; catwalk's own frames never are.
    assert CATWALK_DIR not in result.output
    assert f"({step})" in result.output.splitlines()[-1]


def test_user_traceback_is_shown(model_dir: Callable[[str], Path]) -> None:
    result = run("test-model", "-m", str(model_dir("raises_in_predict")))
    assert "Traceback (most recent call last):" in result.output
    assert str(model_dir("raises_in_predict") / "model.py") in result.output


def test_test_data_that_breaks_the_schema(model_copy: Callable[[str], Path]) -> None:
    folder = model_copy("echo")
    source = (folder / "model.py").read_text()
    (folder / "model.py").write_text(source.replace('"label": "one"', '"label": 1'))
    result = run("test-model", "-m", str(folder))
    assert result.exit_code == 1
    assert "[FAIL] 6. test data matches the schema: row 0: X.label: 1 is not of type 'string'" in (
        result.output
    )


def test_no_install_skips_pip(model_dir: Callable[[str], Path]) -> None:
    result = run("test-model", "--no-install", "-m", str(model_dir("dataframe_echo")))
    assert result.exit_code == 0
    assert "[PASS] 3. requirements: installation skipped (--no-install)" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_model_path(command: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "--model-path" in result.output
    assert "MODEL_PATH" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_no_command_succeeds_on_a_missing_folder(command: str, tmp_path: Path) -> None:
    # Never a silent success, never a traceback.
    result = CliRunner().invoke(cli, [command, "-m", str(tmp_path / "absent")])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_python_dash_m() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "catwalk", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"catwalk, version {catwalk.__version__}"


def test_load_test_data_raising_shows_the_users_traceback(
    model_copy: Callable[[str], Path],
) -> None:
    folder = model_copy("echo")
    source = (folder / "model.py").read_text()
    (folder / "model.py").write_text(
        source.replace("return list(ROWS), list(ROWS)", "return open(path + '/nope.json')")
    )
    result = run("test-model", "-m", str(folder))
    assert result.exit_code == 1
    assert "[FAIL] 5. test data: load_test_data raised FileNotFoundError" in result.output
    assert f'File "{folder / "model.py"}"' in result.output
    assert CATWALK_DIR not in result.output


def test_batch_is_reported_as_one_request_of_many_rows() -> None:
    result = run("test-model", "-m", str(EXAMPLES / "batch"))
    assert "[PASS] 5. test data: 5 example(s), sent as one batch" in result.output
    assert (
        "[PASS] 7. predictions: 5 row(s), predicted as one batch, validate and equal y"
        in result.output
    )


def test_output_that_breaks_the_schema(model_copy: Callable[[str], Path]) -> None:
    folder = model_copy("echo")
    source = (folder / "model.py").read_text()
    (folder / "model.py").write_text(
        source.replace("return echo(X)", "return {**echo(X), 'label': None}")
    )
    result = run("test-model", "-m", str(folder))
    assert result.exit_code == 1
    assert "[FAIL] 7. predictions: row 0: output.label: null is not of type 'string'" in (
        result.output
    )


@pytest.mark.parametrize(
    ("where", "step", "message"),
    [
        ("import", "4. model loads", "model.py: importing it raised"),
        ("init", "4. model loads", "keyboard_interrupt') raised"),
        ("load_test_data", "5. test data", "load_test_data raised"),
        ("predict", "7. predictions", "row 0: predict raised"),
    ],
)
def test_keyboard_interrupt_raised_by_the_model_is_its_failure(
    model_dir: Callable[[str], Path], where: str, step: str, message: str
) -> None:
    result = run(
        "test-model", "-m", str(model_dir("keyboard_interrupt")), env={"INTERRUPT_IN": where}
    )
    assert result.exit_code == 1, result.output
    fail_lines = [line for line in result.output.splitlines() if line.startswith("[FAIL]")]
    assert len(fail_lines) == 1
    assert fail_lines[0].startswith(f"[FAIL] {step}: ")
    assert fail_lines[0].endswith(f"{message} KeyboardInterrupt: the model gave up")
    assert "model.py" in result.output  # the model's own traceback
    assert CATWALK_DIR not in result.output
    assert "Aborted" not in result.output


def test_a_real_ctrl_c_during_the_model_aborts(model_dir: Callable[[str], Path]) -> None:
    result = run(
        "test-model", "-m", str(model_dir("keyboard_interrupt")), env={"INTERRUPT_IN": "sigint"}
    )
    assert result.exit_code == 130
    assert "Aborted!" in result.output
    assert "[FAIL]" not in result.output


def test_a_real_ctrl_c_in_a_subprocess_exits_130(model_dir: Callable[[str], Path]) -> None:
    env = {**os.environ, "INTERRUPT_IN": "sigint"}
    folder = str(model_dir("keyboard_interrupt"))
    cmd = [sys.executable, "-m", "catwalk", "test-model", "--no-install", "-m", folder]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 130, proc.stdout + proc.stderr
    assert proc.stderr.strip().endswith("Aborted!")
    assert "Traceback" not in proc.stderr
