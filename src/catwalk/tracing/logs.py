"""Trace ids in catwalk's log lines, and the SDK's own complaints kept to a line a minute.

:class:`TraceIds` is a filter on catwalk's log handler: a record made while a span is current
(a request's line, its error) gets ``trace_id`` and ``span_id``, which the JSON format writes
as fields and the text format appends to the record's first line (:func:`install` swaps the
handler's formatter for :class:`TracedJson` or :class:`TracedText` when tracing starts, so
that with tracing off a log line costs what it did). An exporter that cannot reach its
endpoint logs on every failed batch and retry; one line per minute per logger says it as well.
"""

from __future__ import annotations

import logging
import time

from opentelemetry import trace

from catwalk.server.logs.jsonlog import JsonFormatter
from catwalk.server.logs.text import Formatter

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


class TracedText(Formatter):
    """catwalk's text format, the ids at the end of the record's first line."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        trace_id = getattr(record, "trace_id", None)
        if trace_id is None:
            return text
        first, newline, rest = text.partition("\n")
        return f"{first} trace_id={trace_id} span_id={record.span_id}{newline}{rest}"  # type: ignore[attr-defined]


class TracedJson(JsonFormatter):
    """catwalk's JSON format with ``trace_id`` and ``span_id`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        trace_id = getattr(record, "trace_id", None)
        if trace_id is None:
            return text
        # Hex digits only: written as they are, before the object's closing brace.
        return f'{text[:-1]},"trace_id":"{trace_id}","span_id":"{record.span_id}"}}'  # type: ignore[attr-defined]


def install() -> None:
    """Put the filter, and the formatter that writes the ids, on catwalk's handlers of the
    root logger (once per handler)."""
    for handler in logging.getLogger().handlers:
        if not getattr(handler, CATWALK_HANDLER, False):
            continue
        if not any(isinstance(f, TraceIds) for f in handler.filters):
            handler.addFilter(TraceIds())
        formatter = handler.formatter
        for plain, traced in ((JsonFormatter, TracedJson), (Formatter, TracedText)):
            if type(formatter) is plain:  # the same state (format, model fields), traced
                swapped = traced.__new__(traced)
                swapped.__dict__.update(formatter.__dict__)
                handler.setFormatter(swapped)
