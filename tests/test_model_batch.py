"""model_batch.predict_many: several inputs, one model call, outputs split back per input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from catwalk.errors import ModelError, ModelLoadError, OutputError
from catwalk.model import LoadedModel, load_model
from catwalk.model_batch import predict_many
from catwalk.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent


def load(folder: Path) -> LoadedModel:
    return load_model(load_spec(folder))


def batcher() -> LoadedModel:
    return load(ROOT / "tests" / "server" / "models" / "batcher")


def test_predict_batch_gets_the_inputs_and_answers_each() -> None:
    model = batcher()
    assert predict_many(model, [{"x": 1}, {"x": 2}]) == [{"y": 2.0}, {"y": 4.0}]
    assert model.instance.sizes == [2]


def test_one_output_that_is_not_json_fails_only_its_input() -> None:
    got = predict_many(batcher(), [{"x": 1}, {"x": 2, "do": "inf"}])
    assert got[0] == {"y": 2.0}
    assert isinstance(got[1], OutputError) and "inf cannot be represented" in str(got[1])


def test_wrong_length_and_raising_fail_the_whole_call() -> None:
    with pytest.raises(OutputError, match=r"predict_batch returned 1 outputs for 2 inputs"):
        predict_many(batcher(), [{"x": 1, "do": "short"}, {"x": 2}])
    with pytest.raises(ModelError, match="predict_batch raised ValueError: asked to raise"):
        predict_many(batcher(), [{"x": 1, "do": "raise"}])


def test_predict_batch_must_return_a_list() -> None:
    folder = ROOT / "tests" / "server" / "models" / "batcher"
    model = load(folder)
    model.instance.predict_batch = lambda Xs: {"y": 1}
    with pytest.raises(OutputError, match="predict_batch must return a list"):
        predict_many(model, [{"x": 1}])


def test_batching_without_predict_batch_is_a_load_error(tmp_path: Path) -> None:
    folder = tmp_path / "nobatch"
    folder.mkdir()
    source = ROOT / "tests" / "server" / "models" / "batcher"
    (folder / "model.yml").write_text((source / "model.yml").read_text())
    text = (source / "model.py").read_text().replace("def predict_batch", "def other")
    (folder / "model.py").write_text(text)
    with pytest.raises(ModelLoadError, match=r"Model needs a method predict_batch\(self, Xs\)"):
        load(folder)


def test_dataframe_records_are_joined_and_split_back() -> None:
    model = load(ROOT / "example_models" / "dataframe")
    inputs: list[Any] = [
        {"x1": 0, "x2": 0, "x3": 0},
        [{"x1": 1, "x2": 2, "x3": 3}, {"x1": -1.5, "x2": 0.25, "x3": 0.75}],
        {"x1": 10, "x2": -3, "x3": 2},
    ]
    got = predict_many(model, inputs)
    assert got == [model.predict(x) for x in inputs]
    assert isinstance(got[0], dict) and isinstance(got[1], list) and len(got[1]) == 2


def test_dataframe_result_of_the_wrong_length_fails_the_batch() -> None:
    model = load(ROOT / "example_models" / "dataframe")
    model.instance.predict = lambda frame: frame.iloc[:1][["x1"]]
    with pytest.raises(OutputError, match="predict returned 1 rows for the 2 input rows"):
        predict_many(model, [{"x1": 0, "x2": 0, "x3": 0}, {"x1": 1, "x2": 1, "x3": 1}])


def test_array_input_models_get_the_arrays_joined() -> None:
    model = load(ROOT / "example_models" / "batch")
    inputs = [
        [{"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}],
        [
            {"seed": 1, "seed_version": 2, "mu": 0.0, "sigma": 1.0},
            {"seed": 2, "seed_version": 2, "mu": 5.0, "sigma": 1.0},
        ],
    ]
    assert predict_many(model, inputs) == [model.predict(x) for x in inputs]
