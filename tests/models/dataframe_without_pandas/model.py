"""Returns its input; remembers the path it was constructed with."""

from echo_helper import echo

ROWS = [{"x": 1, "label": "one"}, {"x": 2.5, "label": "two and a half"}]


class Model:
    def __init__(self, path):
        self.path = path

    def load_test_data(self, path):
        return list(ROWS), list(ROWS)

    def predict(self, X):
        return echo(X)
