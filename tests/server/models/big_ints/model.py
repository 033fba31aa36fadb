"""Reports the integer it got and its Python type: big integers must arrive exact, as int."""

ROWS = [{"n": 1}]


class Model:
    def __init__(self, path):
        pass

    def load_test_data(self, path):
        return list(ROWS), [{"n": 1, "type": "int"}]

    def predict(self, X):
        return {"n": X["n"], "type": type(X["n"]).__name__}
