"""Echoes its input, except that some labels make the output break the schema or JSON."""

ROWS = [{"x": 1, "label": "one"}]


class Model:
    def __init__(self, path):
        pass

    def load_test_data(self, path):
        return list(ROWS), list(ROWS)

    def predict(self, X):
        label = X["label"]
        if label == "wrong_type":
            return {"x": "not a number", "label": label}
        if label == "missing":
            return {"label": label}
        if label == "inf":
            return {"x": float("inf"), "label": label}
        if label == "object":
            return {"x": object(), "label": label}
        if label == "big":
            return {"x": 2**70, "label": label}
        return dict(X)
