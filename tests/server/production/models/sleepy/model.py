"""Sleeps for input["seconds"], then answers: longer than server.timeout means a 504."""

import time

ROWS = [{"seconds": 0}]


class Model:
    def __init__(self, path):
        pass

    def load_test_data(self, path):
        return list(ROWS), [{"slept": 0}]

    def predict(self, X):
        time.sleep(X["seconds"])
        return {"slept": X["seconds"]}
