"""Server logging: one line per request, and the log format of catwalk's own processes.

Request lines come from a WSGI middleware rather than from Flask hooks so that every request
is counted once, whichever way it ends (a view, the error handler, a routing 404/405, a 413),
with one logger call and nothing at all when INFO is disabled::

    POST /predict 200 0.41ms correlation_id=6f1c...
    POST /predict 200 0.41ms correlation_id=order-17 request_id=0d4e...

``request_id`` is nginx's id of the request (production mode, header ``X-Request-Id``), shown
when it is not the correlation id itself, i.e. when the client sent its own: nginx answers
a 504, 502 or 413 with its id, and this is how such an answer is found in this log.

Values that come from the client (the path, the correlation id, error messages quoting the
body) are logged with every non-printable character escaped (:func:`safe`: C0/C1 controls,
and Unicode line and paragraph separators, bidi overrides and other format characters): a
request cannot forge a log line nor make one read differently.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Iterable
from time import perf_counter
from typing import Any

LOGGER_NAME = "catwalk.server"
# Where a view leaves the request's correlation id for the request line (WSGI environ key).
CORRELATION_ID_KEY = "catwalk.correlation_id"
# Where production mode leaves nginx's request id (X-Request-Id) for the app (WSGI environ key);
# never set in debug mode, where a client's X-Request-Id header is not trusted.
REQUEST_ID_KEY = "catwalk.request_id"
# Where RequestLog leaves the request's InFlight (WSGI environ key).
IN_FLIGHT_KEY = "catwalk.in_flight"
_LINE = "%s %s %s %.2fms correlation_id=%s"
_LINE_WITH_REQUEST_ID = _LINE + " request_id=%s"
# A model repository's lines also name the model that answered (its last argument).
_LINE_MODEL = _LINE + " model=%s@%s"
_LINE_WITH_REQUEST_ID_MODEL = _LINE_WITH_REQUEST_ID + " model=%s@%s"
#: Where a model repository's routes leave ``(name, version)`` of the model that answered
#: (WSGI environ key): the request line names it.
MODEL_KEY = "catwalk.model"
# X-Correlation-Id: visible ASCII without quote or backslash (nginx checks the same, and
# writes it into JSON unescaped).
CORRELATION_ID_HEADER = "HTTP_X_CORRELATION_ID"
_HEADER_ID = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,256}")
LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def configure_logging(level: str, log_format: str = "text") -> None:
    """Send catwalk's logs to stderr at ``level`` (INFO, DEBUG, ...), once per process.

    ``log_format`` ``json``: one JSON object per line (:mod:`catwalk.server.jsonlog`).
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_catwalk", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._catwalk = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    if log_format == "json":
        from catwalk.server.jsonlog import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(Formatter(LOG_FORMAT))
    root.setLevel(level)
    logging.getLogger(LOGGER_NAME).setLevel(level)


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


def default_correlation_id(environ: dict[str, Any]) -> str | None:
    """The id of a request whose body names none: the client's X-Correlation-Id header when
    well formed, else nginx's request id (production mode), else None (one is generated)."""
    header = environ.get(CORRELATION_ID_HEADER)
    if header is not None and _HEADER_ID.fullmatch(header):
        return str(header)
    return environ.get(REQUEST_ID_KEY)


class InFlight:
    """One request being answered, for gunicorn's timeout and stop hooks (what they log).

    One per request (:class:`RequestLog` puts it in the environ under ``IN_FLIGHT_KEY``), so a
    batching worker's requests, answered side by side in greenlets of one thread, each keep
    their own; the worker finds them through its connections. It copies what it describes
    from the environ rather than pointing back at it: a cycle would keep the request's body
    alive until a garbage collection.
    """

    __slots__ = ("answered", "body_id", "header_id", "method", "path", "request_id")

    def __init__(self, environ: dict[str, Any]) -> None:
        self.method = environ.get("REQUEST_METHOD")
        self.path = environ.get("PATH_INFO")
        self.request_id: str | None = environ.get(REQUEST_ID_KEY)
        self.header_id = default_correlation_id(environ)
        self.body_id: str | None = None  # the body's correlation id, once the Predictor read it
        self.answered = False  # True once the request's status is known

    def correlation_id(self) -> str | None:
        """The request's correlation id as far as it is known (None: not yet)."""
        return self.body_id or self.header_id

    def describe(self) -> str:
        """``POST /predict correlation_id=... request_id=...`` (what is known of it)."""
        parts = [safe(str(self.method)), safe(str(self.path))]
        correlation_id = self.correlation_id()
        if correlation_id:
            parts.append(f"correlation_id={safe(correlation_id)}")
        if self.request_id and self.request_id != correlation_id:
            parts.append(f"request_id={safe(self.request_id)}")
        return " ".join(parts)


class Formatter(logging.Formatter):
    """logging.Formatter with the date part of ``asctime`` computed once per second."""

    _second: int = -1
    _stamp: str = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(record.created))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"


class RequestLog:
    """WSGI middleware logging method, path, status, latency and correlation id at INFO."""

    def __init__(self, app: WsgiApp, logger: logging.Logger) -> None:
        self.app = app
        self.logger = logger

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        in_flight = environ[IN_FLIGHT_KEY] = InFlight(environ)
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):

            def answered(status: str, headers: Any, exc_info: Any = None) -> Any:
                in_flight.answered = True
                return start_response(status, headers, exc_info)

            return self.app(environ, answered)
        started = perf_counter()

        def logged_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            in_flight.answered = True
            correlation_id = environ.get(CORRELATION_ID_KEY, "-")
            if not correlation_id.isprintable():
                correlation_id = safe(correlation_id)
            request_id = environ.get(REQUEST_ID_KEY)
            path = environ.get("PATH_INFO", "")
            args: tuple[Any, ...] = (
                environ.get("REQUEST_METHOD"),
                path if path.isprintable() else safe(path),
                status[:3],
                (perf_counter() - started) * 1000.0,
                correlation_id,
            )
            line = _LINE
            if request_id is not None and request_id != correlation_id:
                line = _LINE_WITH_REQUEST_ID
                args += (safe(request_id),)
            model = environ.get(MODEL_KEY)
            if model is not None:
                line = _LINE_MODEL if line is _LINE else _LINE_WITH_REQUEST_ID_MODEL
                args += (safe(model[0]), safe(model[1]))
            # makeRecord + handle is logger.info without its stack walk for the caller's
            # file and line, which would be this line anyway.
            logger.handle(
                logger.makeRecord(logger.name, logging.INFO, __file__, 0, line, args, None)
            )
            return start_response(status, headers, exc_info)

        return self.app(environ, logged_start_response)
