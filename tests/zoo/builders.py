"""The zoo: real models on real ML libraries, trained at test time on data a package ships.

``build_model(kind, dest)`` trains one model on one of scikit-learn's bundled datasets (no
download) and writes a complete model folder into ``dest``: ``model.yml`` with a real schema,
``model.py``, the weights file the library writes, ``test_data.json`` (inputs and the trained
model's own answers) and ``requirements.txt`` pinning exactly the versions installed here
(``torch==2.13.0`` is the only torch requirement ever written: see CONTRIBUTING.md).

Kinds (``KINDS``):

* ``sklearn_pipeline``: a ``Pipeline`` with a ``ColumnTransformer`` (scaled numbers, a
  one-hot categorical column) and a logistic regression, served as ``PANDAS_DATA_FRAME``.
* ``xgboost``, ``lightgbm``, ``catboost``: gradient-boosted trees, each loaded with its own
  library's loader (the native thread pools catwalk must size and keep fork safe).
* ``torch``: a small CPU network, its ``state_dict`` saved with ``torch.save``.
* ``onnx``: a scikit-learn pipeline exported with skl2onnx, served by ONNX Runtime.

The tests in this folder and the image tests import it as ``from builders import ...``.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("sklearn_pipeline", "xgboost", "lightgbm", "catboost", "torch", "onnx")

#: Distributions each kind's model.py imports (pinned to what is installed here).
REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "sklearn_pipeline": ("joblib", "numpy", "pandas", "scikit-learn"),
    "xgboost": ("numpy", "xgboost-cpu"),
    "lightgbm": ("numpy", "lightgbm"),
    "catboost": ("numpy", "catboost"),
    "torch": ("numpy", "torch"),
    "onnx": ("numpy", "onnxruntime"),
}

# Ten of breast_cancer's thirty features: enough for real trees, short enough to read.
CANCER_FEATURES = (
    "mean_radius",
    "mean_texture",
    "mean_perimeter",
    "mean_area",
    "mean_smoothness",
    "mean_compactness",
    "mean_concavity",
    "mean_concave_points",
    "mean_symmetry",
    "mean_fractal_dimension",
)
WINE_FEATURES = (
    "alcohol",
    "malic_acid",
    "ash",
    "alcalinity_of_ash",
    "magnesium",
    "total_phenols",
    "flavanoids",
    "nonflavanoid_phenols",
    "proanthocyanins",
    "color_intensity",
    "hue",
    "od280_od315",
    "proline",
)
IRIS_FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
DIABETES_NUMBERS = ("age", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
# How many test_data.json rows each model gets.
TEST_ROWS = 20


def build_model(kind: str, dest: Path) -> Path:
    """Train a ``kind`` model and write its complete folder into ``dest``; return ``dest``."""
    if kind not in _BUILDERS:
        raise ValueError(f"unknown zoo kind {kind!r}; one of {', '.join(KINDS)}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    _BUILDERS[kind](dest)
    pins = [f"{name}=={_installed(name)}" for name in REQUIREMENTS[kind]]
    (dest / "requirements.txt").write_text("\n".join(pins) + "\n", encoding="utf-8")
    return dest


def inputs(kind: str, dest: Path) -> list[dict[str, Any]]:
    """The model's test inputs (``X`` of each test_data.json row)."""
    rows = json.loads((dest / "test_data.json").read_text(encoding="utf-8"))
    return [row["X"] for row in rows]


def _installed(name: str) -> str:
    found = version(name)
    if name == "torch":
        # The wheel on this machine is 2.13.0+cpu; any looser or other requirement makes pip
        # download gigabytes of CUDA wheels.
        assert found.split("+")[0] == "2.13.0", f"torch {found} installed, the zoo needs 2.13.0"
        return "2.13.0"
    return found


# ------------------------------------------------------------------ helpers ----
def _write_yml(
    dest: Path,
    name: str,
    description: str,
    inputs: dict[str, str],
    outputs: dict[str, str],
    io_type: str | None = None,
) -> None:
    """model.yml: every input field required, no other allowed; ``inputs``/``outputs`` map
    each field to its schema in YAML's flow style."""
    lines = [f"name: {name}", 'version: "1.0.0"', "description: >-", f"  {description}"]
    if io_type is not None:
        lines.append(f"io_type: {io_type}")
    lines += ["contact:", "  name: catwalk zoo", "  email: zoo@example.com", "schema:"]
    lines += ["  input:", "    type: object", f"    required: [{', '.join(inputs)}]"]
    lines += ["    additionalProperties: false", "    properties:"]
    lines += [f"      {field}: {schema}" for field, schema in inputs.items()]
    lines += ["  output:", "    type: object", f"    required: [{', '.join(outputs)}]"]
    lines += ["    properties:"]
    lines += [f"      {field}: {schema}" for field, schema in outputs.items()]
    (dest / "model.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")


NUMBER = "{type: number}"
PROBABILITY = "{type: number, minimum: 0, maximum: 1}"


def _numbers(names: tuple[str, ...]) -> dict[str, str]:
    return dict.fromkeys(names, NUMBER)


# The list models' load_test_data (model.py's last method): X and y of test_data.json.
_LIST_TEST_DATA = """
    def load_test_data(self, path):
        with open(os.path.join(path, "test_data.json")) as f:
            rows = json.load(f)
        return [row["X"] for row in rows], [row["y"] for row in rows]
"""


def _py(dest: Path, text: str, *, list_test_data: bool = True) -> None:
    """Write model.py: ``text`` dedented, then (``list_test_data``) :data:`_LIST_TEST_DATA`."""
    code = textwrap.dedent(text).strip("\n") + "\n"
    if list_test_data:
        code += _LIST_TEST_DATA
    (dest / "model.py").write_text(code, encoding="utf-8")


def _records(matrix: np.ndarray[Any, Any], names: tuple[str, ...]) -> list[dict[str, float]]:
    return [dict(zip(names, map(float, row), strict=True)) for row in matrix]


def _write_test_data(dest: Path, xs: list[dict[str, Any]], ys: list[dict[str, Any]]) -> None:
    rows = [{"X": x, "y": y} for x, y in zip(xs, ys, strict=True)]
    (dest / "test_data.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


def _load_module(dest: Path) -> Any:
    """Import the folder's model.py under a unique name and return a ``Model`` instance."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"zoo_{abs(hash(dest))}", dest / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Model(str(dest))


def _answers(dest: Path, xs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The written model's own answers to ``xs`` (so y is what model.py really returns)."""
    model = _load_module(dest)
    return [json.loads(json.dumps(model.predict(x))) for x in xs]


def _cancer() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    return data.data[:, : len(CANCER_FEATURES)], data.target


# model.py's shared tail for the three tree classifiers: rows in, probability + label out.
_TREE_PREDICT = """
    def predict(self, X):
        row = np.array([[X[name] for name in FEATURES]], dtype=np.float64)
        benign = float(self._benign(row)[0])
        malignant = 1.0 - benign
        return {
            "malignant_probability": malignant,
            "label": "malignant" if malignant >= 0.5 else "benign",
        }
"""


def _tree_model(dest: Path, name: str, description: str, imports: str, body: str) -> None:
    """Write a tree classifier's model.yml, model.py and test_data.json (weights exist)."""
    _write_yml(
        dest,
        name,
        description,
        _numbers(CANCER_FEATURES),
        {
            "malignant_probability": PROBABILITY,
            "label": "{type: string, enum: [malignant, benign]}",
        },
    )
    header = f'''
        """{name}: {description}"""

        import json
        import os

        import numpy as np
        {imports}

        FEATURES = {list(CANCER_FEATURES)!r}


        class Model:
    '''
    _py(
        dest,
        textwrap.dedent(header)
        + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
        + "\n"
        + textwrap.indent(textwrap.dedent(_TREE_PREDICT), "    "),
    )
    X, _ = _cancer()
    xs = _records(X[:: len(X) // TEST_ROWS][:TEST_ROWS], CANCER_FEATURES)
    _write_test_data(dest, xs, _answers(dest, xs))


# ------------------------------------------------------------------ kinds ----
def _lightgbm(dest: Path) -> None:
    import lightgbm as lgb

    X, y = _cancer()
    params = {"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": 0}
    booster = lgb.train(params, lgb.Dataset(X, label=y), num_boost_round=60)
    booster.save_model(str(dest / "model.txt"))
    _tree_model(
        dest,
        "ZooLightGBM",
        "A LightGBM binary classifier (60 trees) on sklearn's bundled breast cancer data.",
        "import lightgbm as lgb",
        """
        def __init__(self, path):
            self.booster = lgb.Booster(model_file=os.path.join(path, "model.txt"))

        def _benign(self, rows):
            return self.booster.predict(rows)
        """,
    )


def _xgboost(dest: Path) -> None:
    import xgboost as xgb

    X, y = _cancer()
    params = {"objective": "binary:logistic", "max_depth": 4, "seed": 0, "nthread": 1}
    booster = xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=60)
    booster.save_model(str(dest / "model.json"))
    _tree_model(
        dest,
        "ZooXGBoost",
        "An XGBoost binary classifier (60 trees) on sklearn's bundled breast cancer data.",
        "import xgboost as xgb",
        """
        def __init__(self, path):
            self.booster = xgb.Booster()
            self.booster.load_model(os.path.join(path, "model.json"))

        def _benign(self, rows):
            return self.booster.inplace_predict(rows)
        """,
    )


def _catboost(dest: Path) -> None:
    from catboost import CatBoostClassifier

    X, y = _cancer()
    model = CatBoostClassifier(
        iterations=60, depth=4, random_seed=0, verbose=False, allow_writing_files=False
    )
    model.fit(X, y)
    model.save_model(str(dest / "model.cbm"))
    _tree_model(
        dest,
        "ZooCatBoost",
        "A CatBoost binary classifier (60 trees) on sklearn's bundled breast cancer data.",
        "from catboost import CatBoostClassifier",
        """
        def __init__(self, path):
            self.model = CatBoostClassifier()
            self.model.load_model(os.path.join(path, "model.cbm"))

        def _benign(self, rows):
            return self.model.predict_proba(rows)[:, 1]
        """,
    )


def _sklearn_pipeline(dest: Path) -> None:
    import joblib
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = load_diabetes(as_frame=True)
    frame = data.frame[list(DIABETES_NUMBERS)].copy()
    frame.insert(1, "sex", np.where(data.frame["sex"] > 0, "M", "F"))
    high = (data.target > data.target.median()).astype(int)
    pipeline = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("numbers", StandardScaler(), list(DIABETES_NUMBERS)),
                        ("sex", OneHotEncoder(handle_unknown="ignore"), ["sex"]),
                    ]
                ),
            ),
            ("classify", LogisticRegression(max_iter=1000)),
        ]
    )
    pipeline.fit(frame, high)
    joblib.dump(pipeline, dest / "pipeline.joblib")
    _write_yml(
        dest,
        "ZooPipeline",
        "A scikit-learn Pipeline (ColumnTransformer: scaled numbers, one-hot sex; logistic "
        "regression) predicting above-median diabetes progression, served as a DataFrame model.",
        {"sex": "{type: string, enum: [F, M]}", **_numbers(DIABETES_NUMBERS)},
        {"high_progression_probability": PROBABILITY},
        io_type="PANDAS_DATA_FRAME",
    )
    _py(
        dest,
        '''
        """ZooPipeline: a scikit-learn Pipeline with a ColumnTransformer, DataFrame in and out."""

        import json
        import os

        import joblib
        import pandas as pd


        class Model:
            def __init__(self, path):
                self.pipeline = joblib.load(os.path.join(path, "pipeline.joblib"))

            def load_test_data(self, path):
                with open(os.path.join(path, "test_data.json")) as f:
                    rows = json.load(f)
                return (
                    pd.DataFrame([row["X"] for row in rows]),
                    pd.DataFrame([row["y"] for row in rows]),
                )

            def predict(self, X):
                probability = self.pipeline.predict_proba(X)[:, 1]
                return pd.DataFrame({"high_progression_probability": probability}, index=X.index)
        ''',
        list_test_data=False,
    )
    sample = frame.iloc[:: len(frame) // TEST_ROWS].iloc[:TEST_ROWS]
    xs = [
        {k: (v if isinstance(v, str) else float(v)) for k, v in row.items()}
        for row in sample.to_dict(orient="records")
    ]
    model = _load_module(dest)
    got = model.predict(pd.DataFrame(xs))
    ys = [{"high_progression_probability": float(v)} for v in got["high_progression_probability"]]
    _write_test_data(dest, xs, ys)


def _torch(dest: Path) -> None:
    import torch
    from sklearn.datasets import load_wine

    data = load_wine()
    X = data.data.astype(np.float32)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(len(WINE_FEATURES), 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 3),
    )
    optimiser = torch.optim.Adam(net.parameters(), lr=0.01)
    inputs_t = torch.from_numpy((X - mean) / scale)
    target = torch.from_numpy(data.target.astype(np.int64))
    for _ in range(200):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(inputs_t), target)
        loss.backward()
        optimiser.step()
    torch.save(net.state_dict(), dest / "weights.pt")
    (dest / "scaling.json").write_text(
        json.dumps({"mean": mean.tolist(), "scale": scale.tolist()}), encoding="utf-8"
    )
    _write_yml(
        dest,
        "ZooTorch",
        "A small PyTorch network (13-32-16-3) classifying sklearn's bundled wine data, on CPU.",
        _numbers(WINE_FEATURES),
        {
            "cultivar": "{type: integer, minimum: 0, maximum: 2}",
            "probabilities": f"{{type: array, minItems: 3, maxItems: 3, items: {PROBABILITY}}}",
        },
    )
    _py(
        dest,
        f'''
        """ZooTorch: a small PyTorch network on CPU (weights: state_dict in weights.pt)."""

        import json
        import os

        import numpy as np
        import torch

        FEATURES = {list(WINE_FEATURES)!r}


        class Model:
            def __init__(self, path):
                self.net = torch.nn.Sequential(
                    torch.nn.Linear(len(FEATURES), 32),
                    torch.nn.ReLU(),
                    torch.nn.Linear(32, 16),
                    torch.nn.ReLU(),
                    torch.nn.Linear(16, 3),
                )
                state = torch.load(os.path.join(path, "weights.pt"), weights_only=True)
                self.net.load_state_dict(state)
                self.net.eval()
                with open(os.path.join(path, "scaling.json")) as f:
                    scaling = json.load(f)
                self.mean = np.array(scaling["mean"], dtype=np.float32)
                self.scale = np.array(scaling["scale"], dtype=np.float32)

            def predict(self, X):
                row = np.array([[X[name] for name in FEATURES]], dtype=np.float32)
                with torch.inference_mode():
                    logits = self.net(torch.from_numpy((row - self.mean) / self.scale))
                    probabilities = torch.softmax(logits, dim=1)[0]
                return {{
                    "cultivar": int(torch.argmax(probabilities)),
                    "probabilities": [float(p) for p in probabilities],
                }}
        ''',
    )
    xs = _records(data.data[:: len(data.data) // TEST_ROWS][:TEST_ROWS], WINE_FEATURES)
    _write_test_data(dest, xs, _answers(dest, xs))


def _onnx(dest: Path) -> None:
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_iris()
    X = data.data.astype(np.float32)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    pipeline.fit(X, data.target)
    exported = to_onnx(pipeline, X[:1], options={id(pipeline[-1]): {"zipmap": False}})
    (dest / "model.onnx").write_bytes(exported.SerializeToString())
    species = list(map(str, data.target_names))
    _write_yml(
        dest,
        "ZooOnnx",
        "A scikit-learn pipeline (scaler, logistic regression) on sklearn's bundled iris data, "
        "exported with skl2onnx and served by ONNX Runtime.",
        _numbers(IRIS_FEATURES),
        {"species": f"{{type: string, enum: [{', '.join(species)}]}}", "probability": PROBABILITY},
    )
    _py(
        dest,
        f'''
        """ZooOnnx: an ONNX model (exported from scikit-learn) served by ONNX Runtime."""

        import json
        import os

        import numpy as np
        import onnxruntime

        FEATURES = {list(IRIS_FEATURES)!r}
        SPECIES = {species!r}


        class Model:
            def __init__(self, path):
                # ONNX Runtime's pool ignores OMP_NUM_THREADS: size it from catwalk's plan.
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", "0"))
                self.session = onnxruntime.InferenceSession(
                    os.path.join(path, "model.onnx"),
                    options,
                    providers=["CPUExecutionProvider"],
                )
                self.input = self.session.get_inputs()[0].name

            def predict(self, X):
                row = np.array([[X[name] for name in FEATURES]], dtype=np.float32)
                labels, probabilities = self.session.run(None, {{self.input: row}})
                label = int(labels[0])
                return {{"species": SPECIES[label], "probability": float(probabilities[0][label])}}
        ''',
    )
    xs = _records(data.data[:: len(data.data) // TEST_ROWS][:TEST_ROWS], IRIS_FEATURES)
    _write_test_data(dest, xs, _answers(dest, xs))


_BUILDERS: dict[str, Callable[[Path], None]] = {
    "sklearn_pipeline": _sklearn_pipeline,
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
    "catboost": _catboost,
    "torch": _torch,
    "onnx": _onnx,
}
