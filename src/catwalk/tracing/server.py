"""A served model's tracing: :class:`Tracing` builds the hooks and owns the process's SDK.

:func:`catwalk.server.app.create_app` (and a repository's
:func:`~catwalk.server.repository_app.create_repository_app`) makes one when ``tracing`` is on
(when it is off this module is never imported, nor is OpenTelemetry) and gives it the app's
pieces: :meth:`Tracing.instrument` puts the validation and model-call spans on each
:class:`~catwalk.server.envelope.Predictor`'s hooks (and its ``/v2`` routes') and the batch
hooks on its collector, :meth:`Tracing.wrap` puts the request span around the WSGI app.
The SDK itself starts in the process that answers requests (:meth:`Tracing.start`: a gunicorn
worker's ``post_worker_init``, else the first request), never in a preloading master, and at
the process's exit what waits is exported within ``flush_budget`` seconds.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from typing import Any

from catwalk.server.environ import WsgiApp
from catwalk.tracing import logs, requests, spans
from catwalk.tracing.direct import Direct
from catwalk.tracing.provider import Runtime, start_runtime
from catwalk.tracing.settings import TracingSettings

DROPPED = "catwalk_trace_spans_dropped_total"
# Seconds a stopping process spends exporting its last spans, at most: a stopping gunicorn
# worker has GRACEFUL_TIMEOUT (4 s, catwalk.server.production.render) to exit before its
# master kills it, and the flush runs at its exit: one second of that is left for the rest.
MAX_FLUSH = 3.0


class Tracing:
    """One app's tracing (see the module docstring)."""

    def __init__(
        self,
        settings: TracingSettings,
        name: str,
        drain: float,
        model: tuple[str, str] | None = None,
    ) -> None:
        """``name``: the default service name (the model's, or the repository's); ``model``:
        the one model served, put on the resource (None: a repository, whose spans each name
        the model they are about)."""
        self.settings = settings
        self.name = name
        self.model = model
        # Within the drain (server.graceful_timeout) left once the requests are answered.
        self.flush_budget = max(min(MAX_FLUSH, drain / 2), 0.5)
        self.runtime: Runtime | None = None
        self.tracer: Any = None  # the runtime's tracer, once started in this process
        self.direct: Direct | None = None  # the runtime's direct spans (tracing.direct)
        self._dropped: Any = None  # the Prometheus counter, when metrics are on
        self._starting = threading.Lock()
        if hasattr(os, "register_at_fork"):  # a forked child starts its own SDK
            me = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _forget(me))

    def count_drops_in(self, metrics: Any) -> None:
        """Count dropped spans in ``metrics`` (a :class:`~catwalk.server.metrics.Metrics`)."""
        from prometheus_client import Counter

        self._dropped = Counter(
            DROPPED,
            "Spans dropped because the exporter's queue was full (tracing.max_queue_size).",
            registry=None if metrics.multiprocess_dir else metrics.registry,
        )

    def start(self, exporter: Any = None) -> Any:
        """The SDK of this process (made now if it has none); returns its tracer.

        ``exporter``: a span exporter instead of OTLP's (tests)."""
        with self._starting:  # the debug server's first requests may come at once
            if self.tracer is not None:
                return self.tracer
            self.runtime = start_runtime(
                self.settings, self.name, self.model, self._count_drop, exporter
            )
            logs.install()
            atexit.register(self.flush)
            self.direct = self.runtime.direct
            self.tracer = self.runtime.tracer
            return self.tracer

    def flush(self) -> bool:
        """Export what waits and stop the SDK, within :attr:`flush_budget` (False: not all)."""
        runtime, self.runtime, self.tracer, self.direct = self.runtime, None, None, None
        return runtime is None or runtime.flush(self.flush_budget)

    def _count_drop(self, count: int) -> None:
        if self._dropped is not None:
            self._dropped.inc(count)

    def instrument(self, predictor: Any, v2: Any = None) -> None:
        """Spans on the hooks of the predictor (and of the Open Inference Protocol's routes,
        ``v2``): validation, and the model call or the batches. In a repository each span
        names its model."""
        spec = predictor.model.spec
        named = None if self.model else spans.model_attributes(spec.name, spec.version)
        if v2 is not None:
            v2.check_records = spans.child(
                self, "catwalk.validate_input", v2.check_records, True, named
            )
            v2.check_outputs = spans.child(
                self, "catwalk.validate_output", v2.check_outputs, True, named
            )
        predictor.check_input = spans.child(
            self, "catwalk.validate_input", predictor.check_input, True, named
        )
        predictor.check_output = spans.child(
            self, "catwalk.validate_output", predictor.check_output, True, named
        )
        batcher = predictor.batcher
        if batcher is None:
            predictor.call_model = spans.child(
                self,
                "predict",
                predictor.call_model,
                attributes={**(named or {}), "catwalk.batch.size": 1},
                current=True,
            )
        else:
            call = "predict_batch" if spec.batch_kind == "predict_batch" else "predict"
            batcher.trace = spans.BatchTrace(self, call, named)

    def trace_shadows(self, runner: Any) -> None:
        """Spans for the shadow runs of ``runner`` (a
        :class:`~catwalk.server.shadow.ShadowRunner`)."""
        runner.trace = spans.ShadowTrace(self)

    def wrap(self, app: WsgiApp) -> WsgiApp:
        """``app`` with each request in its span (the untraced paths excepted)."""
        return requests.TraceRequests(app, self)


def _forget(ref: weakref.ref[Tracing]) -> None:
    tracing = ref()
    if tracing is not None:  # the parent's SDK (its thread) did not come along
        tracing.runtime = tracing.tracer = tracing.direct = None
        tracing._starting = threading.Lock()
