"""IrisClassifier: the scikit-learn pipeline trained by ../train.py, served by catwalk."""

import json
import os

import joblib
import numpy as np


class Model:
    def __init__(self, path):
        # Loaded once, when the server starts; path is this folder's absolute path.
        saved = joblib.load(os.path.join(path, "iris.joblib"))
        self.model = saved["model"]
        self.features = saved["features"]
        self.classes = saved["classes"]

    def load_test_data(self, path):
        with open(os.path.join(path, "test_data.json")) as f:
            rows = json.load(f)
        return [row["X"] for row in rows], [row["y"] for row in rows]

    def predict(self, X):
        # One flower per call: a (1, 4) array in the order the model was trained on.
        x = np.array([[X[name] for name in self.features]], dtype=np.float64)
        proba = self.model.predict_proba(x)[0]
        return {
            "species": self.classes[int(proba.argmax())],
            # numpy floats are fine: catwalk turns them into JSON numbers.
            "probabilities": dict(zip(self.classes, proba, strict=True)),
        }


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    model = Model(here)
    X, y = model.load_test_data(here)
    for x, expected in zip(X, y, strict=True):
        got = model.predict(x)
        print(
            json.dumps(x),
            "->",
            got["species"],
            "OK" if got["species"] == expected["species"] else "MISMATCH",
        )
