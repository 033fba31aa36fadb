"""RNGModel: score = random.gauss(mu, sigma) after random.seed(seed, seed_version)."""

import json
import os
import random


class Model:
    def __init__(self, path):
        self.path = path
        # A private generator: seeding it does not disturb other users of `random`.
        self.random = random.Random()

    def load_test_data(self, path):
        with open(os.path.join(path, "test_data.json")) as f:
            rows = json.load(f)
        return [row["X"] for row in rows], [row["y"] for row in rows]

    def predict(self, X):
        self.random.seed(X["seed"], X["seed_version"])
        return {"score": self.random.gauss(X["mu"], X["sigma"])}


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    model = Model(here)
    X, y = model.load_test_data(here)
    for x, expected in zip(X, y, strict=True):
        got = model.predict(x)
        print(json.dumps(x), "->", json.dumps(got), "OK" if got == expected else "MISMATCH")
