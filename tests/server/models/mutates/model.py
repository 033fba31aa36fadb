"""Changes its argument in place (as models do): the response must still echo the input sent."""

ROWS = [{"x": 1, "label": "one", "tags": ["a"]}]


class Model:
    def __init__(self, path):
        pass

    def load_test_data(self, path):
        return [dict(r) for r in ROWS], [{"x": 1}]

    def predict(self, X):
        X.pop("label", None)
        X.setdefault("tags", []).append("seen")
        X["x"] = X["x"] * 10
        return {"x": X["x"] // 10}
