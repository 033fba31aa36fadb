"""The bounded span queue: the SDK's BatchSpanProcessor, with its drops counted and said once.

The SDK's processor already never blocks a request: ended spans wait in a bounded deque for
its export thread, and a span that finds the deque full is dropped. What it does not do is
count the drops where an operator looks (it logs "Queue full" instead, once per 20 s per
process). :class:`CountedQueue` keeps the same bound in front of it with public interfaces
only: a span is let in while fewer than ``max_queue_size`` spans are waiting (in, minus handed
to the exporter, which :class:`CountingExporter` counts), else it is dropped, counted in
``catwalk_trace_spans_dropped_total`` and, the first time in this process, one warning line
is logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from catwalk.server.logs import LOGGER_NAME


class CountingExporter(SpanExporter):
    """An exporter that counts the spans handed to it (they have left the queue)."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.handed = 0  # written by the processor's export thread only (under its lock)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.handed += len(spans)
        return self.exporter.export(spans)

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


class CountedQueue(SpanProcessor):
    """A BatchSpanProcessor of at most ``max_queue_size`` waiting spans; drops counted."""

    def __init__(
        self,
        exporter: SpanExporter,
        max_queue_size: int,
        dropped: Callable[[int], None],
        where: str,
    ) -> None:
        self.counting = CountingExporter(exporter)
        # The SDK's own bound is one higher than ours: it never drops (and never says so).
        self.batch = BatchSpanProcessor(
            self.counting,
            max_queue_size=max_queue_size + 1,
            max_export_batch_size=min(512, max_queue_size),
        )
        self.max_queue_size = max_queue_size
        self.entered = 0
        self.dropped = 0
        self._count_drop = dropped
        self._where = where
        self._lock = threading.Lock()
        self._log = logging.getLogger(LOGGER_NAME)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        with self._lock:
            if self.entered - self.counting.handed >= self.max_queue_size:
                self.dropped += 1
                first = self.dropped == 1
            else:
                self.entered += 1
                first = None
        if first is None:
            self.batch.on_end(span)
            return
        self._count_drop(1)
        if first:
            self._log.warning(
                "tracing: %d spans are waiting for the exporter (%s), the most "
                "tracing.max_queue_size allows: spans are dropped until it catches up, counted "
                "in catwalk_trace_spans_dropped_total (said once per worker)",
                self.max_queue_size,
                self._where,
            )

    def shutdown(self) -> None:
        self.batch.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.batch.force_flush(timeout_millis))

    def waiting(self) -> int:
        """Spans in the queue now (for tests and the flush's log line)."""
        return self.entered - self.counting.handed
