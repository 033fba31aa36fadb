"""The maths, kept in a module of its own to show that model.py can import its neighbours."""

import json
import os

import numpy as np


class Neuron:
    def __init__(self, path):
        with open(os.path.join(path, "weights.json")) as f:
            params = json.load(f)
        self.features = params["features"]
        self.weights = np.array(params["weights"], dtype=np.float64)
        self.bias = float(params["bias"])

    def __call__(self, inputs):
        """inputs: an (n, len(features)) array; returns n probabilities as numpy floats."""
        return 1.0 / (1.0 + np.exp(-(inputs @ self.weights + self.bias)))
