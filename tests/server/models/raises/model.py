"""Echoes its input, except that the label "boom" makes predict raise."""

ROWS = [{"x": 1, "label": "one"}]


class Model:
    def __init__(self, path):
        self.calls = 0

    def load_test_data(self, path):
        return list(ROWS), list(ROWS)

    def predict(self, X):
        self.calls += 1
        if X["label"] == "boom":
            raise ValueError(f"cannot predict {X['label']!r}")
        if X["label"] == "exit":
            raise SystemExit(3)
        return dict(X)
