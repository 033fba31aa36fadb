"""Trace ids in catwalk's log lines, and the SDK's own complaints kept to a line a minute.

:class:`TraceIds` is a filter on catwalk's log handler: a record made while a span is current
(a request's line, its error) gets ``trace_id`` and ``span_id``, which the JSON format writes
as fields and the text format appends (:mod:`catwalk.server.logs`). An exporter that cannot
reach its endpoint logs on every failed batch and retry; one line per minute per logger says
it as well.
"""

from __future__ import annotations

import logging
import time

from opentelemetry import trace

CATWALK_HANDLER = "_catwalk"  # the attribute catwalk's log handler carries (configure_logging)
QUIET = 60.0  # seconds between two lines of one OpenTelemetry logger


class TraceIds(logging.Filter):
    """Adds the current span's ids to a record; rate-limits the SDK's own records."""

    def __init__(self) -> None:
        super().__init__()
        self._said: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("opentelemetry"):
            now = time.monotonic()
            if now - self._said.get(record.name, -QUIET) < QUIET:
                return False
            self._said[record.name] = now
            return True
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


def install() -> None:
    """Put the filter on catwalk's handlers of the root logger (once per handler)."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, CATWALK_HANDLER, False) and not any(
            isinstance(f, TraceIds) for f in handler.filters
        ):
            handler.addFilter(TraceIds())
