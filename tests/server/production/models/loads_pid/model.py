"""Appends the loading process's pid to $LOADS_PID_FILE (which processes load the model)."""

import os


class Model:
    def __init__(self, path):
        with open(os.environ["LOADS_PID_FILE"], "a") as f:
            f.write(f"{os.getpid()}\n")

    def load_test_data(self, path):
        return [{"x": 1}], [{"x": 1}]

    def predict(self, X):
        return {"x": X["x"]}
