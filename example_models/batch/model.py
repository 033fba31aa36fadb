"""BatchRNGModel: the RNG model over a list of records, returning a list of scores."""

import json
import os
import random


class Model:
    def __init__(self, path):
        self.random = random.Random()

    def load_test_data(self, path):
        with open(os.path.join(path, "test_data.json")) as f:
            rows = json.load(f)
        # One batch: X is the list of records, y the list of expected outputs.
        return [row["X"] for row in rows], [row["y"] for row in rows]

    def predict(self, X):
        out = []
        for record in X:
            self.random.seed(record["seed"], record["seed_version"])
            out.append({"score": self.random.gauss(record["mu"], record["sigma"])})
        return out


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    model = Model(here)
    X, y = model.load_test_data(here)
    got = model.predict(X)
    print(json.dumps(got))
    print("OK" if got == y else "MISMATCH")
