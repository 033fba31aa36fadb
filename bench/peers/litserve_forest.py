"""LitServe serving example_models/forest with max_batch_size (bench/batching.py).

``python litserve_forest.py PORT`` with FOREST_DIR set to the model folder; 2 workers, a
batch of up to MAX_BATCH_SIZE requests waiting at most BATCH_TIMEOUT_MS for one another.
The request body is the model's input itself; the answer is ``{"progression": ...}``.
"""

import os
import sys

import litserve as ls

FOREST_DIR = os.environ["FOREST_DIR"]
sys.path.insert(0, FOREST_DIR)
from model import Model  # noqa: E402

MAX_BATCH_SIZE = int(os.environ.get("MAX_BATCH_SIZE", "32"))
BATCH_TIMEOUT = float(os.environ.get("BATCH_TIMEOUT_MS", "10")) / 1000


class Forest(ls.LitAPI):
    def setup(self, device):
        self.model = Model(FOREST_DIR)

    def decode_request(self, request):
        return request

    def batch(self, inputs):
        return list(inputs)

    def predict(self, xs):
        return self.model.predict_batch(xs)

    def unbatch(self, outputs):
        return list(outputs)

    def encode_response(self, output):
        return output


if __name__ == "__main__":
    server = ls.LitServer(
        Forest(),
        accelerator="cpu",
        workers_per_device=2,
        timeout=30,
        max_batch_size=MAX_BATCH_SIZE,
        batch_timeout=BATCH_TIMEOUT,
    )
    server.run(port=int(sys.argv[1]), host="127.0.0.1", generate_client_file=False)
