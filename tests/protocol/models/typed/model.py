class Model:
    def __init__(self, path):
        pass

    def load_test_data(self, path):
        X = [
            {
                "count": 1,
                "small": -2,
                "ratio": 0.5,
                "weight": 1.5,
                "flag": True,
                "label": "a",
                "vector": [1.0, 2.0, 3.0],
                "meta": {"k": [1, "x"]},
                "maybe": None,
            },
            {
                "count": 2,
                "small": 7,
                "ratio": -1.25,
                "weight": 0.0,
                "flag": False,
                "label": "héllo",
                "vector": [0.0, -1.0, 0.5],
                "meta": {},
                "maybe": 2.5,
            },
        ]
        return X, [self.predict(x) for x in X]

    def predict(self, X):
        return {**X, "count": X["count"] * 2}
