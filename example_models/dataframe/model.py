"""NeuronDataFrame: the neuron as a PANDAS_DATA_FRAME model (DataFrame in, DataFrame out)."""

import json
import os

import numpy as np
import pandas as pd


class Model:
    def __init__(self, path):
        with open(os.path.join(path, "weights.json")) as f:
            params = json.load(f)
        self.features = params["features"]
        self.weights = np.array(params["weights"], dtype=np.float64)
        self.bias = float(params["bias"])

    def load_test_data(self, path):
        with open(os.path.join(path, "test_data.json")) as f:
            rows = json.load(f)
        X = pd.DataFrame([row["X"] for row in rows])
        y = pd.DataFrame([row["y"] for row in rows])
        return X, y

    def predict(self, X):
        z = X[self.features].to_numpy(dtype=np.float64) @ self.weights + self.bias
        return pd.DataFrame({"probability": 1.0 / (1.0 + np.exp(-z))}, index=X.index)


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    model = Model(here)
    X, y = model.load_test_data(here)
    got = model.predict(X)
    print(pd.concat([X, got, y.rename(columns={"probability": "expected"})], axis=1))
    print("OK" if np.allclose(got["probability"], y["probability"], rtol=1e-9) else "MISMATCH")
