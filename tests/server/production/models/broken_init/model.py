class Model:
    def __init__(self, path):
        raise RuntimeError("weights.bin is missing")

    def load_test_data(self, path):
        return [], []

    def predict(self, X):
        return X
