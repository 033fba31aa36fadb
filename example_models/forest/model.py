"""Forest: a scikit-learn RandomForest on sklearn's bundled diabetes data, with predict_batch.

The forest is trained when the model loads (442 rows, well under a second; no download, the
data ships with scikit-learn). A forest costs about as much for 1 row as for 32, so
``predict_batch`` (used because model.yml has ``batching:``) answers many requests with one
``predict`` call. ``python model.py`` rewrites test_data.json from the trained forest.
"""

import json
import os

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor

FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


class Model:
    def __init__(self, path):
        data = load_diabetes()
        assert list(data.feature_names) == FEATURES
        self.forest = RandomForestRegressor(n_estimators=50, max_depth=8, random_state=0)
        self.forest.fit(data.data, data.target)

    def load_test_data(self, path):
        with open(os.path.join(path, "test_data.json")) as f:
            rows = json.load(f)
        return [row["X"] for row in rows], [row["y"] for row in rows]

    def predict(self, X):
        return self.predict_batch([X])[0]

    def predict_batch(self, Xs):
        rows = np.array([[X[name] for name in FEATURES] for X in Xs], dtype=np.float64)
        return [{"progression": value} for value in self.forest.predict(rows)]


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    model = Model(here)
    data = load_diabetes()
    X = [dict(zip(FEATURES, map(float, row), strict=True)) for row in data.data[::40]]
    y = model.predict_batch(X)
    rows = [
        {"X": x, "y": {"progression": float(out["progression"])}}
        for x, out in zip(X, y, strict=True)
    ]
    with open(os.path.join(here, "test_data.json"), "w") as f:
        json.dump(rows, f, indent=1)
        f.write("\n")
    print(f"wrote {len(rows)} rows")
