class Model:
    def __init__(self, path):
        pass

    def load_test_data(self, path):
        X = [{"x": 1, "label": "a"}, {"x": 2, "label": "b"}, {"x": 3, "label": "c"}]
        return X, [dict(r) for r in X]

    def predict(self, X):
        # Wrong from the second row on.
        return {"x": X["x"] if X["x"] < 2 else X["x"] + 0.5, "label": X["label"]}
