"""Logging of catwalk's server processes: the logger, the text or JSON format, safe values.

Every process of a server (the supervisor, gunicorn's master and workers, the debug server)
calls :func:`configure_logging` once: its lines go to stderr, as text (:mod:`.text`) or as one
JSON object per line (:mod:`.jsonlog`). Once a process knows the model it serves,
:func:`name_the_model` has every JSON line name it.

Values that come from the client (the path, the correlation id, error messages quoting the
body) are logged with every non-printable character escaped (:func:`safe`: C0/C1 controls,
and Unicode line and paragraph separators, bidi overrides and other format characters): a
request cannot forge a log line nor make one read differently.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from catwalk.server.logs.jsonlog import JsonFormatter
from catwalk.server.logs.text import LOG_FORMAT, Formatter

LOGGER_NAME = "catwalk.server"
# Lines a worker gathers at most before it writes them (LineHandler).
MAX_PENDING = 256


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """catwalk's handler: a line per record on stderr, written at once; or, once a worker's
    event loop takes over the writing (:func:`write_once_per_turn`), gathered and written
    together when the loop has its next turn.

    A line costs its own ``write`` system call otherwise: on a worker answering thousands of
    requests a second, the request log cost a fifth of its throughput that way
    (bench/RESULTS.md). Under load the loop turns every ``TURN`` seconds at most (50 ms), so a
    line waits no longer; idle, the loop turns after each request. A line at WARNING or above
    is written at once, with those before it.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.pending: list[str] = []
        self.defer: Callable[[Callable[[], None]], object] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.defer is None:
            super().emit(record)
            return
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._gather(line, record.levelno >= logging.WARNING)

    def _gather(self, line: str, urgent: bool) -> None:
        """Keep ``line`` for the loop's next turn (write it now if ``urgent`` or too many
        wait). Called with the handler's lock held."""
        self.pending.append(line)
        if urgent or len(self.pending) >= MAX_PENDING:
            self._write()
        elif len(self.pending) == 1:
            self.defer(self.flush)  # type: ignore[misc]

    def request_line(self, name: str, message: str, fields: dict[str, Any]) -> None:
        """Gather an INFO line of logger ``name`` without a LogRecord (see
        :func:`request_line_writer`): the same text as the record's, at half its cost."""
        formatter = self.formatter
        assert isinstance(formatter, Formatter | JsonFormatter)
        created = time.time()
        self.acquire()  # as for a record: the formatter's cached stamp is shared
        try:
            line = formatter.request_line(created, name, os.getpid(), message, fields)
            self._gather(line + self.terminator, False)
        finally:
            self.release()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write()
        finally:
            self.release()

    def _write(self) -> None:
        if self.pending:
            data = "".join(self.pending)
            self.pending.clear()
            try:
                self.stream.write(data)
            except Exception:  # stderr gone: as logging does, never fail the caller
                return
        super().flush()


def write_once_per_turn(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """From now on this process's lines are written together once per turn of ``loop``
    (see :class:`LineHandler`); returns what writes the pending ones now (at exit)."""
    handler = _handler()
    if not isinstance(handler, LineHandler):
        return lambda: None
    thread = threading.get_ident()

    def defer(flush: Callable[[], None]) -> None:
        if threading.get_ident() == thread:
            loop.call_soon(flush)
        else:  # a line from a thread of the model's
            loop.call_soon_threadsafe(flush)

    handler.defer = defer
    return handler.flush


def request_line_writer(
    logger: logging.Logger,
) -> Callable[[str, str, dict[str, Any]], None] | None:
    """What writes an INFO line of ``logger`` straight to catwalk's handler, or None.

    A record's way through ``logging`` (the record, the loggers' and the handler's filters,
    the formatter's generic format) costs several times the line itself, and a worker writes
    one line per request: the request log (:mod:`catwalk.server.ops.request_log`) takes this
    way instead when it leads to the same text, i.e. when nothing but catwalk's handler,
    gathering for a worker's loop with catwalk's own format, would see the record: no filter
    on the way (tracing adds one), no other handler. Otherwise None: the record's way.
    """
    node: logging.Logger | None = logger
    while node is not None:
        if node.filters or (node.handlers and node.parent is not None):
            return None
        if node.parent is None:
            break
        if not node.propagate:
            return None
        node = node.parent
    if node is None or len(node.handlers) != 1:
        return None
    handler = node.handlers[0]
    if (
        not isinstance(handler, LineHandler)
        or handler.defer is None
        or handler.filters
        or handler.level > logging.INFO
    ):
        return None
    formatter = handler.formatter
    if type(formatter) is JsonFormatter or (
        type(formatter) is Formatter and formatter.datefmt is None and formatter._fmt == LOG_FORMAT
    ):
        return handler.request_line
    return None


def _handler() -> logging.Handler | None:
    """catwalk's handler on the root logger (None before :func:`configure_logging`)."""
    return next((h for h in logging.getLogger().handlers if getattr(h, "_catwalk", False)), None)


def configure_logging(level: str, log_format: str = "text") -> None:
    """Send catwalk's logs to stderr at ``level`` (INFO, DEBUG, ...), once per process.

    ``log_format`` ``json``: one JSON object per line (:mod:`catwalk.server.logs.jsonlog`).
    """
    handler = _handler()
    if handler is None:
        handler = LineHandler()
        handler._catwalk = True  # type: ignore[attr-defined]
        logging.getLogger().addHandler(handler)
    if log_format == "json":
        if not isinstance(handler.formatter, JsonFormatter):
            handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(Formatter(LOG_FORMAT))
    logging.getLogger().setLevel(level)
    logging.getLogger(LOGGER_NAME).setLevel(level)


def json_formatter() -> JsonFormatter:
    """The JSON formatter of this process's lines (a new one before :func:`configure_logging`
    chose JSON): gunicorn's own handler takes it too, so that its lines name the model."""
    handler = _handler()
    found = handler.formatter if handler is not None else None
    return found if isinstance(found, JsonFormatter) else JsonFormatter()


def name_the_model(name: str, version: str) -> None:
    """From now on every JSON line of this process names the model it serves."""
    handler = _handler()
    if handler is not None and isinstance(handler.formatter, JsonFormatter):
        handler.formatter.model_fields = {"model_name": name, "model_version": version}


def safe(text: str) -> str:
    """``text`` with every non-printable character escaped (``\\n``, ``\\x1b``, ``\\u2028``).

    "Printable" is :meth:`str.isprintable`: not a control (Cc), format (Cf: bidi overrides,
    zero-width characters), separator other than the space (Zl, Zp, Zs), surrogate or
    unassigned code point. One log line stays one and reads as what it holds.
    """
    if text.isprintable():  # the common case, and cheap
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return char.encode("unicode_escape").decode("ascii")  # \n, \t, \x1b, \xa0
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
