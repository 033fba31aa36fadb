"""Spans of the batch commands, ``catwalk predict`` and ``catwalk score``, when tracing is on.

One span for the run (``catwalk predict`` / ``catwalk score``, a child of the ``TRACEPARENT``
variable's span when a CI job or a scheduler sets one, the OpenTelemetry convention for
processes) and one ``catwalk.chunk`` span per chunk done: ``catwalk predict``'s
:data:`CHUNK_LINES` lines, ``catwalk score``'s batches as they are written, each covering the
time since the previous chunk was done, with its row count. Configured by the same variables
as the server (there is no ``application.yml`` here); off, nothing is imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from time import time_ns
from typing import Any

from catwalk.errors import ConfigError
from catwalk.spec import ModelSpec
from catwalk.tracing.settings import read_tracing

CHUNK_LINES = 1000
FLUSH_SECONDS = 5.0


class JobTrace:
    """The run's span and its chunks' (see the module docstring)."""

    def __init__(self, command: str, spec: ModelSpec, settings: Any) -> None:
        from opentelemetry import propagate, trace

        from catwalk.tracing.provider import start_runtime

        self._trace = trace
        model = (spec.name, spec.version)
        self.runtime = start_runtime(settings, spec.name, model, lambda count: None)
        carrier = {
            k.lower(): os.environ[k] for k in ("TRACEPARENT", "TRACESTATE") if k in os.environ
        }
        self.root = self.runtime.tracer.start_span(
            f"catwalk {command}", context=propagate.extract(carrier)
        )
        self._context = trace.set_span_in_context(self.root)
        self._since = time_ns()
        self.rows = 0

    def chunk_done(self, rows: int, failed: int | None = None) -> None:
        """A chunk of ``rows`` rows is done: its span, from the previous chunk to now."""
        now = time_ns()
        attributes: dict[str, Any] = {"catwalk.chunk.rows": rows}
        if failed is not None:
            attributes["catwalk.chunk.failed"] = failed
        span = self.runtime.tracer.start_span(
            "catwalk.chunk", context=self._context, attributes=attributes, start_time=self._since
        )
        span.end(end_time=now)
        self._since = now
        self.rows += rows

    def close(self, error: BaseException | None = None) -> None:
        """End the run's span (an error: by its type) and export, within FLUSH_SECONDS."""
        self.root.set_attribute("catwalk.rows", self.rows)
        if error is not None:
            self.root.set_attribute("error.type", type(error).__qualname__)
            self.root.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
        self.root.end()
        self.runtime.flush(FLUSH_SECONDS)


def job_trace(command: str, spec: ModelSpec) -> JobTrace | None:
    """The run's tracing when the OTEL_* variables turn it on (None: off)."""
    problems: list[str] = []
    settings = read_tracing({}, problems)
    if problems:
        raise ConfigError("\n".join(problems))
    return JobTrace(command, spec, settings) if settings.enabled else None


def chunked(items: Iterable[Any], trace: JobTrace, failed: Any) -> Iterator[Any]:
    """``items`` unchanged; every :data:`CHUNK_LINES` of them (and the last few) a chunk span,
    counting those for which ``failed(item)`` holds."""
    rows = bad = 0
    try:
        for item in items:
            rows += 1
            bad += bool(failed(item))
            yield item
            if rows == CHUNK_LINES:
                trace.chunk_done(rows, bad)
                rows = bad = 0
    finally:  # the last chunk, also when the caller stops early
        if rows:
            trace.chunk_done(rows, bad)
