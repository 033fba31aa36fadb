"""Reports its worker's native pools: numpy's BLAS and scikit-learn's OpenMP, loaded here."""

import os

import numpy as np
import sklearn.ensemble  # noqa: F401 - loads scikit-learn's OpenMP runtime
from threadpoolctl import threadpool_info


class Model:
    def __init__(self, path):
        self.matrix = np.ones((64, 64))

    def load_test_data(self, path):
        return [{}], [self.predict({})]

    def predict(self, X):
        return {
            "pools": [
                {"api": pool["user_api"], "threads": pool["num_threads"]}
                for pool in threadpool_info()
            ],
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", ""),
        }
