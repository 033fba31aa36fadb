"""A fixture model of a repository: y = x * factor (settings.json beside it says how)."""

import json
import os
import time


class Model:
    def __init__(self, path):
        with open(os.path.join(path, "settings.json")) as f:
            self.settings = json.load(f)
        if self.settings.get("fail_load"):
            raise RuntimeError("this model refuses to load")

    def load_test_data(self, path):
        X = [{"x": 1.0}, {"x": 2.5}]
        return X, [{"y": row["x"] * self.settings["factor"]} for row in X]

    def predict(self, X):
        if self.settings.get("sleep"):
            time.sleep(self.settings["sleep"])
        if self.settings.get("raise"):
            raise ValueError("this model always raises")
        return {"y": X["x"] * self.settings["factor"]}
