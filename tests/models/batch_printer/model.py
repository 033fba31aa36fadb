"""Doubles x; predict_batch prints the batch size, predict prints "single". x = 13 raises."""


class Model:
    def __init__(self, path):
        pass

    def load_test_data(self, path):
        X = [{"x": float(i)} for i in range(6)]
        return X, [{"y": 2.0 * x["x"]} for x in X]

    def predict(self, X):
        print("single")
        if X["x"] == 13:
            raise ValueError("13 is unlucky")
        return {"y": 2.0 * X["x"]}

    def predict_batch(self, Xs):
        print(f"batch of {len(Xs)}")
        if any(X["x"] == 13 for X in Xs):
            raise ValueError("13 is unlucky")
        return [{"y": 2.0 * X["x"]} for X in Xs]
