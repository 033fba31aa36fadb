class Model:
    def __init__(self, path):
        pass

    def load_test_data(self, path):
        return [{"x": 1, "label": "a"}, {"x": 2, "label": "b"}], [{"x": 1, "label": "a"}]

    def predict(self, X):
        return X
