def read_weights(path):
    raise FileNotFoundError("weights.bin is missing from " + path)


class Model:
    def __init__(self, path):
        self.weights = read_weights(path)

    def load_test_data(self, path):
        return [], []

    def predict(self, X):
        return X
