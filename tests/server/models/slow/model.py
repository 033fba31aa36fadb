"""Echoes its input, slowly: long enough to interrupt test-server in the middle of its checks."""

import time

ROWS = [{"x": 1, "label": "one"}]


class Model:
    def __init__(self, path):
        pass

    def load_test_data(self, path):
        return list(ROWS), list(ROWS)

    def predict(self, X):
        time.sleep(0.5)
        return dict(X)
