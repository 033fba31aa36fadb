"""Echoes its input, except that x < 0 makes predict raise and x >= 1000 takes 1.5 s."""

import time


class Model:
    def __init__(self, path):
        pass

    def load_test_data(self, path):
        return [{"x": 1}], [{"x": 1}]

    def predict(self, X):
        if X["x"] < 0:
            raise ValueError(f"negative x: {X['x']}")
        if X["x"] >= 1000:
            time.sleep(1.5)
        return {"x": X["x"]}
