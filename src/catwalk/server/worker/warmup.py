"""Warm-up: each production worker predicts on the model's test data before it takes traffic.

A model's first call is often its slowest (lazy initialisation, JIT compilation, first-touch
memory, a native pool starting its threads): 12 s for one model, enough for the first client's
request to time out. :func:`warm_up` runs in each gunicorn worker after it has loaded the app
(gunicorn's ``post_worker_init`` hook) and before it accepts a connection, so no request ever
meets a cold worker, and ``GET /ready`` (answered by warmed workers only) means ready.

The examples are the first ``runtime.warmup_examples`` (model.yml, default 10) of the model's
``load_test_data``: one ``predict`` each, or one call with them all for a DataFrame or
array-input model, or one batch (``predict_batch``) for a model with ``batching:``. A model
that fails its own test data is logged (ERROR) and served anyway: every request would then
fail the same way, and the log says why first.

gunicorn counts a worker's boot against its timeout: a :class:`Heartbeat` thread tells the
master the worker is alive while the warm-up runs, for at most :data:`MAX_WARMUP_SECONDS`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from catwalk.errors import CatwalkError
from catwalk.model import LoadedModel, describe
from catwalk.model_batch import predict_many
from catwalk.normalize import to_json
from catwalk.server.ops.readiness import Readiness

# After this long a worker still warming up stops telling the master it is alive: gunicorn's
# timeout then replaces it (a warm-up stuck for ever must not hold the server back silently).
MAX_WARMUP_SECONDS = 300.0
_log = logging.getLogger("catwalk.server")


class Heartbeat:
    """Calls ``notify`` every ``interval`` s in a daemon thread until stopped or ``limit`` s."""

    def __init__(self, notify: Callable[[], Any], interval: float = 1.0, limit: float = 300.0):
        self.notify = notify
        self.interval = interval
        self.limit = limit
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="catwalk-warmup", daemon=True)

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()

    def _beat(self) -> None:
        until = time.monotonic() + self.limit
        while not self.done.wait(self.interval) and time.monotonic() < until:
            self.notify()


def warm_up(model: LoadedModel, examples: int, readiness: Readiness | None = None) -> str:
    """Predict on the first ``examples`` test examples; return what was done (for the log).

    ``readiness`` (the app's) says "warming up" meanwhile. Raises nothing: a failure is
    logged and described in the returned text.
    """
    if examples <= 0:
        return "warm-up off (runtime.warmup_examples: 0)"
    if readiness is not None:
        readiness.warming = True
    started = time.perf_counter()
    try:
        count = _predict_examples(model, examples)
    except CatwalkError as exc:
        details = getattr(exc, "details", "")
        _log.error(
            "worker %d: warm-up failed, serving anyway (every request may fail alike): %s%s",
            os.getpid(),
            exc,
            f"\n{details}" if details else "",
        )
        return f"warm-up failed: {exc}"
    except Exception as exc:  # the model's test data in an unexpected shape
        _log.error("worker %d: warm-up failed, serving anyway: %s", os.getpid(), describe(exc))
        return f"warm-up failed: {describe(exc)}"
    finally:
        if readiness is not None:
            readiness.warming = False
    took = time.perf_counter() - started
    return f"warmed up on {count} test example(s) in {took:.2f} s"


def _predict_examples(model: LoadedModel, examples: int) -> int:
    X, _ = model.load_test_data()
    xs = to_json(X, "X")
    if not isinstance(xs, list) or not xs:
        raise CatwalkError("load_test_data returned no examples to warm up on")
    xs = xs[:examples]
    # The model itself, not the app's timed call: the warm-up is no request (not in /metrics).
    # A batching model is warmed up the way it serves: in a batch.
    if model.spec.batching is not None:
        for output in predict_many(model, xs):
            if isinstance(output, CatwalkError):
                raise output
    elif model.is_dataframe or model.spec.input.is_batch:
        model.predict(xs)
    else:
        for x in xs:
            model.predict(x)
    return len(xs)
