"""Adaptive micro-batching: concurrent requests of one worker answered by one model call.

A worker serving a model with ``batching:`` runs each request in its own thread (gunicorn
``gthread`` in production, :func:`worker_threads` threads per worker; the Flask dev server is
threaded too). A request is parsed and validated in its thread, then :meth:`Batcher.submit`
hands its input to the worker's collector thread and waits. The collector takes the oldest
waiting input and waits for more, up to ``max_batch_size``, for at most ``max_latency_ms``
from that input's arrival, and only while another request of this worker is still being read
and validated (:meth:`Batcher.arriving`): nobody waits for requests that are not there, so a
lone request goes to the model at once. Under load the queue fills while the model runs, and
the next batch leaves as soon as the model is free. The model is called once per batch
(:func:`catwalk.model_batch.predict_many`); each answer goes back to its own request's
thread, which checks and writes its own response.

- A model that raises fails every request of that batch (500 each); the next batch is served.
- A request not answered within ``server.timeout`` gets 504. When a batch is still in the
  model ``exit_after`` seconds after it started (production: server.timeout plus gunicorn's
  margin), the worker ends itself and gunicorn starts a new one, as it does with a sync
  worker stuck in a request.
- The numbers (batches, requests, sizes) are in :meth:`Batcher.stats`, for metrics.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from catwalk.config import ServerSettings
from catwalk.errors import CatwalkError, ModelTimeout
from catwalk.model import LoadedModel
from catwalk.model_batch import predict_many
from catwalk.server.logs import LOGGER_NAME
from catwalk.spec import Batching

# Exit code of a worker that ended itself because a batch stayed in the model too long.
STUCK_EXIT = 70
# Threads per gunicorn worker for a batching model: enough for one full batch in the model
# while the next one is being parsed and collected.
MAX_THREADS = 128

RunBatch = Callable[[list[Any]], list[Any]]
# Seconds after which a batch still in the model ends its worker (None: never). Set by the
# gunicorn side of production mode (catwalk.server.wsgi); the debug server never ends itself.
_exit_after: float | None = None


def end_stuck_workers(after: float | None) -> None:
    """From now on, a worker whose batch stays ``after`` seconds in the model ends itself."""
    global _exit_after
    _exit_after = after


def make_batcher(model: LoadedModel, settings: ServerSettings) -> Batcher | None:
    """The collector for ``model`` when it is batched under ``settings`` (else None)."""
    batching = settings.batching.apply(model.spec.batching)
    if batching is None:
        return None
    return Batcher(
        lambda inputs: predict_many(model, inputs), batching, timeout=float(settings.timeout)
    )


def worker_threads(batching: Batching) -> int:
    """gunicorn threads per worker for a model batched with ``batching``."""
    return max(4, min(2 * batching.max_batch_size, MAX_THREADS))


class _Pending:
    """One request's input waiting for its batch, and then its answer."""

    __slots__ = ("arrived", "data", "done", "error", "output")

    def __init__(self, data: Any) -> None:
        self.data = data
        self.arrived = time.monotonic()
        self.done = threading.Event()
        self.output: Any = None
        self.error: CatwalkError | None = None


class Batcher:
    """The per-worker collector: see the module docstring."""

    def __init__(
        self,
        run: RunBatch,
        batching: Batching,
        *,
        timeout: float,
    ) -> None:
        self.run = run
        self.max_batch_size = batching.max_batch_size
        self.max_latency = batching.max_latency_ms / 1000.0
        self.timeout = timeout
        self.exit_after: float | None = None
        self._log = logging.getLogger(LOGGER_NAME)
        self._pid = -1  # the process whose collector thread is running (none yet)
        self._start_lock = threading.Lock()
        self._cond = threading.Condition()
        self._queue: deque[_Pending] = deque()
        self._arriving = 0  # requests being read and validated, not yet in the queue
        self._local = threading.local()
        self._busy_since: float | None = None  # when the batch now in the model started
        self._busy_size = 0
        # Numbers for metrics: how many batches and requests, and how big the batches were.
        self.batches = 0
        self.requests = 0
        self.failed_batches = 0
        self.sizes: dict[int, int] = {}

    # ---------------------------------------------------------- requests ----
    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Around a request's reading and validation: the collector may wait for it."""
        if self._pid != os.getpid():
            self._start()
        local = self._local
        with self._cond:
            self._arriving += 1
        local.announced = True
        try:
            yield
        finally:
            if local.announced:  # it never reached submit (a 400, say)
                local.announced = False
                with self._cond:
                    self._arriving -= 1
                    self._cond.notify()

    def submit(self, data: Any) -> Any:
        """The model's output for ``data`` (JSON), computed in a batch; raises CatwalkError."""
        if self._pid != os.getpid():
            self._start()
        pending = _Pending(data)
        local = self._local
        with self._cond:
            if getattr(local, "announced", False):
                local.announced = False
                self._arriving -= 1
            self._queue.append(pending)
            self._cond.notify()
        if not pending.done.wait(self.timeout):
            raise ModelTimeout(
                f"the model did not answer within {self.timeout:g} s (server.timeout)"
            )
        if pending.error is not None:
            raise pending.error
        return pending.output

    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters (batch sizes as ``{size: batches}``)."""
        with self._cond:
            return {
                "batches": self.batches,
                "requests": self.requests,
                "failed_batches": self.failed_batches,
                "sizes": dict(self.sizes),
                "queued": len(self._queue),
            }

    # --------------------------------------------------------- collector ----
    def _start(self) -> None:
        # Threads do not survive fork: a gunicorn worker forked from a preloading master
        # starts its own collector on its first request.
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._cond = threading.Condition()
            self._queue = deque()
            self._arriving = 0
            self._local = threading.local()
            self.exit_after = _exit_after
            threading.Thread(target=self._collect, name="catwalk-batcher", daemon=True).start()
            if self.exit_after is not None:
                threading.Thread(target=self._watch, name="catwalk-watchdog", daemon=True).start()
            self._pid = os.getpid()

    def _collect(self) -> None:
        cond, queue = self._cond, self._queue
        while True:
            with cond:
                while not queue:
                    cond.wait()
                deadline = queue[0].arrived + self.max_latency
                while len(queue) < self.max_batch_size and self._arriving > 0:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    cond.wait(left)
                take = min(len(queue), self.max_batch_size)
                batch = [queue.popleft() for _ in range(take)]
                self._busy_since, self._busy_size = time.monotonic(), take
            try:
                self._answer(batch)
            finally:
                with cond:
                    self._busy_since = None

    def _answer(self, batch: list[_Pending]) -> None:
        failed = False
        started = time.perf_counter()
        try:
            results = self.run([p.data for p in batch])
        except CatwalkError as exc:
            failed = True
            results = [exc] * len(batch)
        except Exception as exc:  # catwalk's own bug: still answer every request
            self._log.exception("batch of %d failed", len(batch))
            failed = True
            results = [CatwalkError(f"internal server error: {type(exc).__name__}: {exc}")] * len(
                batch
            )
        if self._log.isEnabledFor(logging.DEBUG):
            self._log.debug(
                "batch of %d: %.2f ms in the model, first request waited %.2f ms",
                len(batch),
                (time.perf_counter() - started) * 1000,
                (time.monotonic() - batch[0].arrived) * 1000
                - (time.perf_counter() - started) * 1000,
            )
        with self._cond:
            self.batches += 1
            self.requests += len(batch)
            self.failed_batches += failed
            self.sizes[len(batch)] = self.sizes.get(len(batch), 0) + 1
        for pending, result in zip(batch, results, strict=True):
            if isinstance(result, CatwalkError):
                pending.error = result
            else:
                pending.output = result
            pending.done.set()

    def _watch(self) -> None:
        assert self.exit_after is not None
        while True:
            time.sleep(min(1.0, self.exit_after / 4))
            started = self._busy_since
            if started is not None and time.monotonic() - started > self.exit_after:
                self._log.error(
                    "worker timeout: a batch of %d request(s) has been in the model for more "
                    "than %g s (server.timeout, nginx answered 504); this worker ends and "
                    "gunicorn starts a new one",
                    self._busy_size,
                    self.exit_after,
                )
                for handler in logging.getLogger().handlers:
                    handler.flush()
                os._exit(STUCK_EXIT)
