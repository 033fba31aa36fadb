"""The model loader and the io-type adapters."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import catwalk
from catwalk.errors import ModelError, ModelLoadError, OutputError
from catwalk.model import LoadedModel, load_model
from catwalk.spec import load_spec

CATWALK_DIR = str(Path(catwalk.__file__).resolve().parent)


def load(path: Path) -> LoadedModel:
    return load_model(load_spec(path))


def test_loads_and_imports_neighbours(model_dir: Callable[[str], Path]) -> None:
    model = load(model_dir("echo"))
    # model.py does `from echo_helper import echo`, a module next to it.
    assert model.predict({"x": 1, "label": "a"}) == {"x": 1, "label": "a"}


def test_model_gets_the_absolute_path_as_str(
    model_dir: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(model_dir("echo").parent)
    model = load_model(load_spec("echo"))
    assert type(model.instance.path) is str
    assert model.instance.path == str(model_dir("echo"))


def test_two_folders_load_as_separate_modules(
    model_dir: Callable[[str], Path], model_copy: Callable[[str], Path]
) -> None:
    copy = model_copy("echo")
    a, b = load(model_dir("echo")), load(copy)
    assert type(a.instance) is not type(b.instance)
    assert (a.instance.path, b.instance.path) == (str(model_dir("echo")), str(copy))


def test_error_while_constructing(model_dir: Callable[[str], Path]) -> None:
    folder = model_dir("raises_in_init")
    with pytest.raises(ModelLoadError) as info:
        load(folder)
    error = info.value
    assert str(error).startswith(f"{folder / 'model.py'}: Model({str(folder)!r}) raised ")
    assert "FileNotFoundError: weights.bin is missing from" in str(error)
    details = error.details
    assert details.startswith("Traceback (most recent call last):")
    assert f'File "{folder / "model.py"}", line 7, in __init__' in details
    assert "in read_weights" in details
    assert CATWALK_DIR not in details
    assert "importlib" not in details


def test_error_while_importing(model_dir: Callable[[str], Path]) -> None:
    folder = model_dir("import_error")
    with pytest.raises(ModelLoadError) as info:
        load(folder)
    assert str(info.value) == (
        f"{folder / 'model.py'}: importing it raised ModuleNotFoundError: "
        "No module named 'catwalk_tests_no_such_module' (is the distribution that provides "
        "'catwalk_tests_no_such_module' listed in requirements.txt? the model runs with those "
        f"and catwalk's, in {sys.prefix})"
    )
    assert f'File "{folder / "model.py"}", line 1, in <module>' in info.value.details
    assert CATWALK_DIR not in info.value.details


def test_syntax_error_is_a_load_error(model_copy: Callable[[str], Path]) -> None:
    folder = model_copy("echo")
    (folder / "model.py").write_text("class Model(:\n    pass\n")
    with pytest.raises(ModelLoadError, match="importing it raised SyntaxError") as info:
        load(folder)
    assert "model.py" in info.value.details


def test_sys_exit_while_importing_is_a_load_error(model_copy: Callable[[str], Path]) -> None:
    folder = model_copy("echo")
    (folder / "model.py").write_text("import sys\nsys.exit(3)\n")
    with pytest.raises(ModelLoadError, match="importing it raised SystemExit: 3"):
        load(folder)


def test_missing_model_class(model_dir: Callable[[str], Path]) -> None:
    folder = model_dir("no_model_class")
    with pytest.raises(ModelLoadError) as info:
        load(folder)
    assert str(info.value) == f"{folder / 'model.py'}: defines no class named Model"


def test_missing_predict_method(model_copy: Callable[[str], Path]) -> None:
    folder = model_copy("echo")
    (folder / "model.py").write_text(
        "class Model:\n    def __init__(self, path): pass\n"
        "    def load_test_data(self, path): return [], []\n"
    )
    with pytest.raises(ModelLoadError, match=r"Model has no method predict\(\.\.\.\)"):
        load(folder)


def test_predict_raising_is_a_model_error(model_dir: Callable[[str], Path]) -> None:
    model = load(model_dir("raises_in_predict"))
    with pytest.raises(ModelError) as info:
        model.predict({"x": 1, "label": "oops"})
    assert str(info.value) == "predict raised ValueError: cannot predict oops"
    assert "in predict" in info.value.details
    assert CATWALK_DIR not in info.value.details


def test_sys_exit_in_predict_is_a_model_error(model_copy: Callable[[str], Path]) -> None:
    folder = model_copy("echo")
    (folder / "model.py").write_text(
        "import sys\n\nclass Model:\n    def __init__(self, path): pass\n"
        "    def load_test_data(self, path): return [], []\n"
        "    def predict(self, X): sys.exit('bye')\n"
    )
    with pytest.raises(ModelError, match="predict raised SystemExit: bye"):
        load(folder).predict({})


def test_output_is_normalised(model_copy: Callable[[str], Path]) -> None:
    folder = model_copy("echo")
    (folder / "model.py").write_text(
        "import numpy as np\n\nclass Model:\n    def __init__(self, path): pass\n"
        "    def load_test_data(self, path): return [], []\n"
        "    def predict(self, X): return {'x': np.float32(X['x']), 'label': ('a', 'b')}\n"
    )
    assert load(folder).predict({"x": 0.5}) == {"x": 0.5, "label": ["a", "b"]}


def test_unconvertible_output(model_copy: Callable[[str], Path]) -> None:
    folder = model_copy("echo")
    (folder / "model.py").write_text(
        "class Model:\n    def __init__(self, path): pass\n"
        "    def load_test_data(self, path): return [], []\n"
        "    def predict(self, X): return {'x': float('inf')}\n"
    )
    with pytest.raises(OutputError, match=r"^output\.x: inf cannot be represented in JSON"):
        load(folder).predict({})


def test_load_test_data(model_dir: Callable[[str], Path]) -> None:
    X, y = load(model_dir("echo")).load_test_data()
    assert X == y == [{"x": 1, "label": "one"}, {"x": 2.5, "label": "two and a half"}]


def test_load_test_data_must_return_a_pair(model_copy: Callable[[str], Path]) -> None:
    folder = model_copy("echo")
    (folder / "model.py").write_text(
        "class Model:\n    def __init__(self, path): pass\n"
        "    def load_test_data(self, path): return [1, 2, 3]\n"
        "    def predict(self, X): return X\n"
    )
    with pytest.raises(ModelError, match=r"must return a pair \(X, y\), got list"):
        load(folder).load_test_data()


def test_dataframe_one_record_in_one_record_out(model_dir: Callable[[str], Path]) -> None:
    model = load(model_dir("dataframe_echo"))
    assert model.predict({"x": 1.5, "label": "a"}) == {"x": 3.0, "label": "a"}
    (frame,) = model.instance.received
    assert isinstance(frame, pd.DataFrame)
    assert frame.to_dict(orient="records") == [{"x": 1.5, "label": "a"}]


def test_dataframe_list_in_list_out(model_dir: Callable[[str], Path]) -> None:
    model = load(model_dir("dataframe_echo"))
    records = [{"x": 1.0, "label": "a"}, {"x": 2.0, "label": "b"}]
    assert model.predict(records) == [{"x": 2.0, "label": "a"}, {"x": 4.0, "label": "b"}]
    assert model.predict(records[:1]) == [{"x": 2.0, "label": "a"}]
    assert len(model.instance.received[0]) == 2


def test_dataframe_validation_of_lists(model_dir: Callable[[str], Path]) -> None:
    model = load(model_dir("dataframe_echo"))
    assert model.input_errors({"x": 1, "label": "a"}) == []
    assert model.input_errors([{"x": 1, "label": "a"}, {"x": "2", "label": "b"}]) == [
        """input[1].x: "2" is not of type 'number'"""
    ]
    assert model.input_errors([]) == ["input: must not be an empty list"]


def test_dataframe_one_record_in_many_out_is_an_error(model_copy: Callable[[str], Path]) -> None:
    folder = model_copy("dataframe_echo")
    source = (folder / "model.py").read_text()
    (folder / "model.py").write_text(
        source.replace('"label": X["label"]})', '"label": "z"}, index=[0, 1])')
    )
    with pytest.raises(OutputError, match="one record in, 2 records out"):
        load(folder).predict({"x": 1.0, "label": "a"})


def test_dict_model_list_validation_uses_the_schema(model_dir: Callable[[str], Path]) -> None:
    # A PYTHON_DICT model with an object schema does not take lists.
    model = load(model_dir("echo"))
    assert model.input_errors([{"x": 1, "label": "a"}]) == [
        """input: [{"x": 1, "label": "a"}] is not of type 'object'"""
    ]


def test_user_folder_named_like_catwalk_keeps_its_frames(model_dir: Callable[[str], Path]) -> None:
    # A folder beside catwalk's package whose name starts with "catwalk" is the user's code.
    folder = Path(tempfile.mkdtemp(prefix="catwalk_tests_", dir=Path(CATWALK_DIR).parent))
    try:
        shutil.copytree(model_dir("raises_in_init"), folder / "m")
        with pytest.raises(ModelLoadError) as info:
            load(folder / "m")
        assert "in read_weights" in info.value.details
        assert "in __init__" in info.value.details
    finally:
        shutil.rmtree(folder)


def test_test_model_says_what_to_return_for_a_naive_datetime() -> None:
    from click.testing import CliRunner

    from catwalk.cli import cli

    folder = Path(__file__).parent / "server" / "models" / "naive_time"
    result = CliRunner().invoke(cli, ["test-model", "--no-install", "-m", str(folder)])
    assert result.exit_code == 1
    assert "no UTC offset: predict returned a naive datetime; return an aware one" in result.output
