"""A model whose first predict is slow (3 s), like a JIT compiling or a pool starting."""

import time

COLD_SECONDS = 3.0


class Model:
    def __init__(self, path):
        self.warm = False

    def load_test_data(self, path):
        return [{"x": 1.5}, {"x": 2}], [{"x": 1.5}, {"x": 2}]

    def predict(self, X):
        if not self.warm:
            time.sleep(COLD_SECONDS)
            self.warm = True
        return X
