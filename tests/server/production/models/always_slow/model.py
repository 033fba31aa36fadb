"""Every predict takes 2 s: slower than a test-server --timeout of 1 s."""

import time


class Model:
    def __init__(self, path):
        pass

    def load_test_data(self, path):
        return [{"x": 1}], [{"x": 1}]

    def predict(self, X):
        time.sleep(2.0)
        return X
