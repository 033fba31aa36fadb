"""BentoML serving example_models/forest with its adaptive batching (bench/batching.py).

``bentoml serve bentoml_forest:Forest`` with FOREST_DIR set to the model folder. The API is
batchable, so a request body is ``{"inputs": [X]}`` (a batch of one, which BentoML's
dispatcher joins with other requests' along the first dimension) and the answer is
``[{"progression": ...}]``. BentoML's ``max_latency_ms`` is a deadline for the whole request
(requests that cannot meet it are refused with 503), not a wait: see bench/RESULTS.md.
"""

import os
import sys

import bentoml

FOREST_DIR = os.environ["FOREST_DIR"]
sys.path.insert(0, FOREST_DIR)
from model import Model  # noqa: E402

MAX_BATCH_SIZE = int(os.environ.get("MAX_BATCH_SIZE", "32"))
MAX_LATENCY_MS = int(os.environ.get("BENTOML_MAX_LATENCY_MS", "1000"))


@bentoml.service(workers=2, logging={"access": {"enabled": False}})
class Forest:
    def __init__(self) -> None:
        self.model = Model(FOREST_DIR)

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS)
    def predict(self, inputs: list[dict]) -> list[dict]:
        return self.model.predict_batch(inputs)
