"""``catwalk init``: the new folder passes test-model and test-server (the real server) as is."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from catwalk.cli import cli
from catwalk.image.naming import model_tag
from catwalk.scaffold import check_name, render_folder
from catwalk.spec import load_spec


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.slow
@pytest.mark.parametrize("io_type", ["PYTHON_DICT", "PANDAS_DATA_FRAME"])
def test_the_new_folder_passes_test_model_and_test_server(tmp_path: Path, io_type: str) -> None:
    result = run("init", "my-model", "--io-type", io_type, "--path", str(tmp_path))
    assert result.exit_code == 0, result.output
    folder = tmp_path / "my-model"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "inputs.jsonl",
        "model.py",
        "model.yml",
        "requirements.txt",
        "test_data.json",
        "weights.json",
    ]
    assert f"catwalk test-model -m {folder}" in result.output

    spec = load_spec(folder)
    assert (spec.name, spec.version, spec.io_type) == ("my-model", "0.1.0", io_type)
    assert "pandas" in (folder / "requirements.txt").read_text() or io_type == "PYTHON_DICT"

    tested = run("test-model", "-m", str(folder))
    assert tested.exit_code == 0, tested.output
    assert tested.output.splitlines()[-1] == "test-model: all 7 step(s) passed"
    # The production server (nginx + gunicorn), as a user's first test-server runs it.
    served = run("test-server", "-m", str(folder), "--no-install")
    assert served.exit_code == 0, served.output
    assert "[PASS] 7. server starts: production server answers" in served.output
    assert served.output.splitlines()[-1] == "test-server: all 25 step(s) passed"


@pytest.mark.parametrize("io_type", ["PYTHON_DICT", "PANDAS_DATA_FRAME"])
def test_the_schema_examples_validate(tmp_path: Path, io_type: str) -> None:
    """Every field has an example, and the examples make a valid input and output."""
    assert run("init", "m", "--io-type", io_type, "--path", str(tmp_path)).exit_code == 0
    spec = load_spec(tmp_path / "m")
    for side in (spec.input, spec.output):
        fields: dict[str, Any] = side.openapi["properties"]
        assert fields and all("example" in f for f in fields.values())
        record = {name: f["example"] for name, f in fields.items()}
        assert side.errors(record, "example") == []
    # The schema is strict enough to catch a wrong input.
    assert spec.input.errors({"length": -1, "width": "3"}, "input") != []


def test_io_type_is_case_insensitive_and_checked(tmp_path: Path) -> None:
    result = run("init", "m", "--io-type", "pandas_data_frame", "--path", str(tmp_path))
    assert result.exit_code == 0
    assert load_spec(tmp_path / "m").io_type == "PANDAS_DATA_FRAME"
    bad = run("init", "n", "--io-type", "NUMPY", "--path", str(tmp_path))
    assert bad.exit_code == 2 and "'NUMPY' is not one of" in bad.output
    assert not (tmp_path / "n").exists()


def test_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    result = run("init", "taken", "--path", str(tmp_path))
    assert result.exit_code == 1
    assert f"Error: {folder}: exists and is not empty" in result.output
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    (tmp_path / "file").write_text("")
    assert "exists and is not a folder" in run("init", "file", "--path", str(tmp_path)).output


def test_fills_an_empty_folder_and_creates_missing_parents(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert run("init", "empty", "--path", str(tmp_path)).exit_code == 0
    assert (tmp_path / "empty" / "model.yml").is_file()
    nested = tmp_path / "a" / "b"
    assert run("init", "deep", "--path", str(nested)).exit_code == 0
    assert (nested / "deep" / "model.py").is_file()


def test_default_path_is_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("init", "here")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "here" / "model.yml").is_file()
    # The README's commands name the folder as the user does: relative to where they are.
    assert "catwalk test-model -m here " in (tmp_path / "here" / "README.md").read_text()


@pytest.mark.parametrize(
    "name",
    ["", "bad name", "_leading", "trailing.", "a..b", "a/b", "..", "ünï", "a" * 129, "x;rm"],
)
def test_rejects_names_that_are_not_valid_model_or_image_names(tmp_path: Path, name: str) -> None:
    result = run("init", name, "--path", str(tmp_path))
    assert result.exit_code == 1
    assert f"Error: model name {name!r}: use letters, digits" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["m", "my-model", "Iris_v2", "a.b-c_d", "x" * 128])
def test_accepts_valid_names(name: str) -> None:
    assert check_name(name) == name
    assert model_tag(name) == name.lower()  # the image is named after the model, unchanged


def test_render_folder_is_pure_and_names_the_folder() -> None:
    files = render_folder("m", "PYTHON_DICT", "models/m")
    assert "name: m\n" in files["model.yml"]
    assert "io_type: PYTHON_DICT" in files["model.yml"]
    assert "import pandas" not in files["model.py"]
    assert "catwalk serve -m models/m --debug --reload" in files["README.md"]
    frame = render_folder("m", "PANDAS_DATA_FRAME", "m")
    assert "import pandas as pd" in frame["model.py"]
    assert "pandas>=" in frame["requirements.txt"]


def test_the_readme_quickstart_says_what_really_happens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quickstart's init / test-model / predict lines, run as written, print what it shows."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    lines = [line.split("#")[0].strip() for line in section.splitlines()]
    monkeypatch.chdir(tmp_path)
    ran = []
    for line in lines:
        if line.startswith("catwalk ") and " serve " not in line and "<" not in line:
            args = shlex.split(line)[1:]
            if args[0] == "test":
                args.append("--debug")  # test-server's production run is covered above
            result = run(*args)
            assert result.exit_code == 0, f"{line}\n{result.output}"
            ran.append((args[0], result.stdout))
    # Every file the quickstart names exists: init writes my-model/inputs.jsonl (issue 17).
    assert [name for name, _ in ran] == ["init", "test-model", "predict", "predict", "test"]
    assert len((tmp_path / "outputs.jsonl").read_text().splitlines()) == 5
    shown = section.split("catwalk predict -m my-model --input", 1)[1].splitlines()[1]
    assert json.loads(ran[2][1]) == json.loads(shown.lstrip("# "))
    curl_shown = section.split('"output":', 1)[1].split("}", 1)[0] + "}"
    assert json.loads(curl_shown) == json.loads(ran[2][1])
