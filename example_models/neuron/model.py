"""Neuron: sigmoid(x . w + b) with numpy, one record per call."""

import json
import os

import numpy as np
from neuron import Neuron


class Model:
    def __init__(self, path):
        self.neuron = Neuron(path)

    def load_test_data(self, path):
        with open(os.path.join(path, "test_data.json")) as f:
            rows = json.load(f)
        return [row["X"] for row in rows], [row["y"] for row in rows]

    def predict(self, X):
        inputs = np.array([[X[name] for name in self.neuron.features]], dtype=np.float64)
        # A numpy float64 on purpose: catwalk turns numpy values into JSON numbers.
        return {"probability": self.neuron(inputs)[0]}


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    model = Model(here)
    X, y = model.load_test_data(here)
    for x, expected in zip(X, y, strict=True):
        got = float(model.predict(x)["probability"])
        ok = abs(got - expected["probability"]) <= 1e-9 * abs(expected["probability"])
        print(json.dumps(x), "->", got, "OK" if ok else "MISMATCH")
