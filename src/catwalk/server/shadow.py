"""Shadow traffic: a request answered by one version also runs on another, off the request path.

``models.shadow: {NAME: VERSION}`` (:mod:`catwalk.repository.routing`): once a request for
NAME has its answer, the answer (its echoed input and its output) is handed to this process's
shadow thread, and the request goes on without waiting. The thread runs the shadow model on
the same input and compares the outputs as ``test-model`` compares predictions with the
expected ones (:func:`catwalk.normalize.first_difference`, the same relative tolerance);
each comparison is logged and counted (``catwalk_shadow_total{name,version,outcome}``). The
answer is never changed by the shadow, and a shadow that raises or is slow harms nothing: its
queue is bounded (a full queue drops the run, counted as an ``error``), the thread is a
daemon, and it calls the model directly, never through a batching collector.

One thread per process, started at the first shadow run (so in each gunicorn worker after the
fork, never in the master before it). With tracing on, :attr:`ShadowRunner.trace` (a
:class:`catwalk.tracing.spans.ShadowTrace`) puts each run of a sampled request in a
``catwalk.shadow`` span, a child of the request's.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass, replace
from typing import Any

import orjson

from catwalk.errors import CatwalkError
from catwalk.model import LoadedModel, describe
from catwalk.normalize import DEFAULT_TOLERANCE, first_difference
from catwalk.server.logs import safe
from catwalk.server.model_metrics import ModelMetrics

#: Shadow runs waiting at most; beyond, a run is dropped (the shadow is too slow to keep up).
QUEUE_SIZE = 256


@dataclass(frozen=True)
class ShadowJob:
    model: LoadedModel  # the shadow
    answered_by: str  # name@version of the model that answered
    answer: bytes  # the response body sent
    correlation_id: str
    span: Any = None  # the request's span context, when tracing sampled it


class ShadowRunner:
    """This process's shadow thread and its queue."""

    def __init__(
        self,
        log: logging.Logger,
        metrics: ModelMetrics | None,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        self.log = log
        self.metrics = metrics
        self.tolerance = tolerance
        self._queue: queue.Queue[ShadowJob] = queue.Queue(QUEUE_SIZE)
        self._pid: int | None = None
        self._dropped = 0
        self.trace: Any = None  # tracing's hooks (catwalk.tracing.spans.ShadowTrace), when on

    def submit(self, job: ShadowJob) -> None:
        """Queue ``job``; never blocks, never raises."""
        if self._pid != os.getpid():  # first run in this process (a forked worker)
            self._queue = queue.Queue(QUEUE_SIZE)
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="catwalk-shadow", daemon=True).start()
        if self.trace is not None:
            job = replace(job, span=self.trace.member())
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._dropped += 1
            if self._dropped & (self._dropped - 1) == 0:  # the 1st, 2nd, 4th, 8th... drop
                self.log.warning(
                    "shadow %s: %d run(s) dropped so far, the shadow is slower than the "
                    "traffic (%d waiting) correlation_id=%s",
                    _ref(job.model),
                    self._dropped,
                    QUEUE_SIZE,
                    safe(job.correlation_id),
                )
            self._count(job.model, "error")

    def join(self) -> None:
        """Wait until every queued run is done (tests)."""
        self._queue.join()

    def _run(self) -> None:
        jobs = self._queue
        while True:
            job = jobs.get()
            try:
                if job.span is not None and self.trace is not None:
                    self.trace.run(job.span, job.model.spec, lambda job=job: self._compare(job))
                else:
                    self._compare(job)
            except Exception:  # never let the thread die: the next run must still happen
                self.log.exception("shadow %s: catwalk's own error", _ref(job.model))
            finally:
                jobs.task_done()

    def _compare(self, job: ShadowJob) -> str:
        """Run the shadow on the job's input, count and log how it compares; the outcome."""
        model = job.model
        detail = ""
        try:
            sent: dict[str, Any] = orjson.loads(job.answer)
            data, expected = sent["input"], sent["output"]
            problems = model.input_errors(data)
            if problems:
                raise CatwalkError("input: " + "; ".join(problems))
            got = model.predict(data)
            problems = model.output_errors(got)
            if problems:
                raise CatwalkError("output: " + "; ".join(problems))
            difference = first_difference(expected, got, self.tolerance)
        except Exception as exc:  # the shadow model's failure is only counted and logged
            outcome, detail = (
                "error",
                describe(exc) if not isinstance(exc, CatwalkError) else str(exc),
            )
        else:
            outcome = "same" if difference is None else "different"
            detail = difference or ""
        self._count(model, outcome)
        level = logging.WARNING if outcome == "error" else logging.INFO
        self.log.log(
            level,
            "shadow %s beside %s: %s%s correlation_id=%s",
            _ref(model),
            job.answered_by,
            outcome,
            f" ({safe(detail)[:500]})" if detail else "",
            safe(job.correlation_id),
            extra={"correlation_id": job.correlation_id},
        )
        return outcome

    def _count(self, model: LoadedModel, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.observe_shadow(model.spec.name, model.spec.version, outcome)


def _ref(model: LoadedModel) -> str:
    return f"{model.spec.name}@{model.spec.version}"
