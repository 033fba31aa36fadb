"""Adaptive micro-batching: concurrent requests of one worker answered by one model call.

A request to a model with ``batching:`` is parsed and validated on its own, then
:meth:`Batcher.submit` hands its input to the worker's collector and waits. The collector
takes the oldest waiting input and waits for more, up to ``max_batch_size``, for at most
``max_latency_ms`` from that input's arrival, and only while more are on their way; under
load the queue fills while the model runs, and the next batch leaves as soon as the model is
free. The model is called once per batch (:func:`catwalk.model_batch.predict_many`); each
answer goes back to its own request, which checks and writes its own response.

Two ways to wait, one collector:

- Production (:mod:`catwalk.server.worker.loop_worker`, :meth:`Batcher.attach`, through the
  app's ``attach_loop``): each request runs in a greenlet of the worker's one thread.
  ``submit`` queues the input and switches back to the event loop, which reads the next
  requests; the batch runs in the loop as soon as ``max_batch_size`` inputs wait, or as many
  as the last batch had (the clients that were answered are coming back) and no request is
  half read, or no request has arrived for ``ARRIVAL_GAP`` (1 ms) and none is half read, or
  ``max_latency_ms`` after the oldest arrived. A batch stuck in the model stops the worker's
  heartbeat: gunicorn aborts it at its timeout and starts a new one, as with any request.
- The debug server (threaded): each request has its own thread, and a collector thread waits
  while other requests are still being read and validated (:meth:`Batcher.arriving`); a
  request not answered within ``server.timeout`` gets 504.

When the model call fails as a whole (it raises, or its output cannot be split back), each
request of the batch is given to the model again in a batch of its own
(:func:`catwalk.model_batch.predict_each`): only the request that causes the failure gets its
500, its batch-mates their answers; the next batch is served.
The numbers (batches, requests, sizes) are in :meth:`Batcher.stats`, for metrics.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from greenlet import getcurrent

from catwalk.config import ServerSettings
from catwalk.errors import CatwalkError, ModelTimeout
from catwalk.model import LoadedModel
from catwalk.model_batch import predict_each
from catwalk.server.logs import LOGGER_NAME
from catwalk.spec import Batching

RunBatch = Callable[[list[Any]], list[Any]]
# Seconds without a new request after which a batch that is short of the last one's size
# leaves anyway (on an event loop; capped by max_latency_ms).
ARRIVAL_GAP = 0.001
# The shortest wait the collector schedules (the loop's timers are as fine as a millisecond;
# a shorter one would spin).
MIN_WAIT = 0.001


def make_batcher(model: LoadedModel, settings: ServerSettings) -> Batcher | None:
    """The collector for ``model`` when it is batched under ``settings`` (else None)."""
    batching = settings.batching.apply(model.spec.batching)
    if batching is None:
        return None
    return Batcher(
        lambda inputs: predict_each(model, inputs), batching, timeout=float(settings.timeout)
    )


class _Pending:
    """One request's input waiting for its batch, and then its answer."""

    __slots__ = ("arrived", "data", "done", "error", "output", "waiter")

    def __init__(self, data: Any, waiter: Any = None) -> None:
        self.data = data
        self.arrived = time.monotonic()
        self.waiter = waiter  # the request's greenlet (on a loop), else None
        self.done = threading.Event() if waiter is None else None
        self.output: Any = None
        self.error: CatwalkError | None = None


class _Group:
    """The waiter of several inputs of one request: it goes on once all are answered."""

    __slots__ = ("greenlet", "left")

    def __init__(self, greenlet: Any, count: int) -> None:
        self.greenlet = greenlet
        self.left = count

    def switch(self) -> None:
        self.left -= 1
        if not self.left:
            self.greenlet.switch()


class Batcher:
    """The per-worker collector: see the module docstring."""

    def __init__(
        self,
        run: RunBatch,
        batching: Batching,
        *,
        timeout: float,
        arrival_gap: float = ARRIVAL_GAP,
    ) -> None:
        self.run = run
        self.max_batch_size = batching.max_batch_size
        self.max_latency = batching.max_latency_ms / 1000.0
        self.timeout = timeout
        self._log = logging.getLogger(LOGGER_NAME)
        self._pid = -1  # the process whose collector thread is running (none yet)
        self._start_lock = threading.Lock()
        self._cond = threading.Condition()
        self._queue: deque[_Pending] = deque()
        self._arriving = 0  # requests being read and validated, not yet in the queue
        self._local = threading.local()
        # On an event loop (attach): the loop, its count of half-read requests, the calls
        # scheduled to run the next batch, and the size of the last one.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading: Callable[[], int] = lambda: 0
        self._soon: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._gap: asyncio.TimerHandle | None = None
        self._expected = 1
        # How long no arrival means no more are coming (at most max_latency_ms).
        self._quiet = min(arrival_gap, self.max_latency)
        # Numbers for metrics: how many batches and requests, and how big the batches were.
        self.batches = 0
        self.requests = 0
        self.failed_batches = 0
        self.sizes: dict[int, int] = {}

    # ---------------------------------------------------------- requests ----
    @contextmanager
    def arriving(self) -> Iterator[None]:
        """Around a request's reading and validation: the collector may wait for it."""
        if self._loop is not None:  # the loop counts half-read requests itself
            yield
            return
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
        if self._loop is not None:
            return self._submit_on_loop(data)
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
        assert pending.done is not None
        if not pending.done.wait(self.timeout):
            raise ModelTimeout(
                f"the model did not answer within {self.timeout:g} s (server.timeout)"
            )
        if pending.error is not None:
            raise pending.error
        return pending.output

    def submit_many(self, inputs: list[Any]) -> list[Any]:
        """Outputs of several inputs of one request (an Open Inference Protocol infer), each
        joining the collector like a request of its own; an input's CatwalkError stands in
        its place. They may be split over several batches (``max_batch_size``)."""
        if self._loop is not None:
            me = getcurrent()
            if me.parent is None:  # the loop's own greenlet cannot wait: batches right away
                pendings = [_Pending(data) for data in inputs]
                for at in range(0, len(pendings), self.max_batch_size):
                    self._answer(pendings[at : at + self.max_batch_size])
            else:
                group = _Group(me, len(inputs))
                pendings = [_Pending(data, group) for data in inputs]
                self._queue.extend(pendings)
                self._schedule()
                me.parent.switch()  # back to the loop, until the last one is answered
        else:
            if self._pid != os.getpid():
                self._start()
            pendings = [_Pending(data) for data in inputs]
            local = self._local
            with self._cond:
                if getattr(local, "announced", False):
                    local.announced = False
                    self._arriving -= 1
                self._queue.extend(pendings)
                self._cond.notify()
            deadline = time.monotonic() + self.timeout
            for pending in pendings:
                assert pending.done is not None
                if not pending.done.wait(max(deadline - time.monotonic(), 0.0)):
                    raise ModelTimeout(
                        f"the model did not answer within {self.timeout:g} s (server.timeout)"
                    )
        return [p.error if p.error is not None else p.output for p in pendings]

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

    # ------------------------------------------------------- on a loop ----
    def attach(self, loop: asyncio.AbstractEventLoop, reading: Callable[[], int]) -> None:
        """From now on, wait on ``loop`` (see the module docstring); no threads."""
        self._loop, self._reading = loop, reading
        self._queue = deque()

    def _submit_on_loop(self, data: Any) -> Any:
        me = getcurrent()
        if me.parent is None:  # the loop's own greenlet cannot wait: a batch of one
            pending = _Pending(data)
            self._answer([pending])
        else:
            pending = _Pending(data, me)
            self._queue.append(pending)
            self._schedule()
            me.parent.switch()  # back to the loop, until _flush resumes this request
        if pending.error is not None:
            raise pending.error
        return pending.output

    def _schedule(self) -> None:
        loop = self._loop
        assert loop is not None
        queued = len(self._queue)
        if not queued:
            return
        if self._soon is None:  # after the loop has read what has arrived meanwhile
            self._soon = loop.call_soon(self._flush_if_ready)
        if self._timer is None:
            wait = self._queue[0].arrived + self.max_latency - time.monotonic()
            self._timer = loop.call_later(max(wait, 0.0), self._flush)

    def _flush_if_ready(self) -> None:
        self._soon = None
        queued = len(self._queue)
        if queued >= self.max_batch_size or (queued >= self._expected and not self._reading()):
            self._flush()
        elif self._gap is None:
            self._gap = self._loop.call_later(self._quiet, self._gap_over)  # type: ignore[union-attr]

    def _gap_over(self) -> None:
        # Fewer came back than the last batch had (some went to another worker, or clients
        # left): once none has arrived for a moment, waiting longer only adds latency.
        self._gap = None
        queue = self._queue
        if not queue:
            return
        quiet = time.monotonic() - queue[-1].arrived
        if quiet >= self._quiet * 0.9 and not self._reading():
            self._flush()
        else:
            wait = max(self._quiet - quiet, MIN_WAIT)
            self._gap = self._loop.call_later(wait, self._gap_over)  # type: ignore[union-attr]

    def _flush(self) -> None:
        for handle in (self._timer, self._gap):
            if handle is not None:
                handle.cancel()
        self._timer = self._gap = None
        queue = self._queue
        if not queue:
            return
        batch = [queue.popleft() for _ in range(min(len(queue), self.max_batch_size))]
        self._expected = len(batch)
        self._answer(batch)
        for pending in batch:
            pending.waiter.switch()  # the request goes on, to its answer
        self._schedule()

    # --------------------------------------------------------- collector ----
    def _start(self) -> None:
        # Threads do not survive fork: a process forked from a preloading one starts its
        # own collector on its first request.
        with self._start_lock:
            if self._pid == os.getpid():
                return
            self._cond = threading.Condition()
            self._queue = deque()
            self._arriving = 0
            self._local = threading.local()
            threading.Thread(target=self._collect, name="catwalk-batcher", daemon=True).start()
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
            self._answer(batch)
            for pending in batch:
                assert pending.done is not None
                pending.done.set()

    def _answer(self, batch: list[_Pending]) -> None:
        """Run the model on ``batch`` and leave each request its output or error."""
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
        failed = failed or any(isinstance(result, CatwalkError) for result in results)
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
