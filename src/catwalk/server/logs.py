"""Server logging: one line per request, and the log format of catwalk's own processes.

Request lines come from a WSGI middleware rather than from Flask hooks so that every request
is counted once, whichever way it ends (a view, the error handler, a routing 404/405, a 413),
with one logger call and nothing at all when INFO is disabled::

    POST /predict 200 0.41ms correlation_id=6f1c...
    POST /predict 200 0.41ms correlation_id=order-17 request_id=0d4e...

``request_id`` is nginx's id of the request (production mode, header ``X-Request-Id``), shown
when it is not the correlation id itself, i.e. when the client sent its own: nginx answers
a 504, 502 or 413 with its id, and this is how such an answer is found in this log.

Values that come from the client (the path, error messages quoting the body) are logged with
their control characters escaped (:func:`safe`): a request cannot forge a log line.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
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
_LINE = "%s %s %s %.2fms correlation_id=%s"
_LINE_WITH_REQUEST_ID = _LINE + " request_id=%s"
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def configure_logging(level: str) -> None:
    """Send catwalk's logs to stderr at ``level`` (INFO, DEBUG, ...), once per process."""
    root = logging.getLogger()
    if not any(getattr(h, "_catwalk", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(Formatter(LOG_FORMAT))
        handler._catwalk = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger(LOGGER_NAME).setLevel(level)


def safe(text: str) -> str:
    """``text`` with control characters escaped (``\\n``, ``\\x1b``): one log line stays one."""
    if text.isprintable():  # the common case, and cheap
        return text
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class InFlight(threading.local):
    """The request this thread is answering, for gunicorn's worker-timeout hook.

    Thread-local: a batching model's worker answers several requests at once, one a thread.
    """

    def __init__(self) -> None:
        self.environ: dict[str, Any] | None = None
        self.correlation_id: str | None = None  # set by the Predictor before the model runs

    def describe(self) -> str:
        """``POST /predict correlation_id=... request_id=...`` (what is known of it)."""
        environ = self.environ
        if environ is None:
            return "no request in flight"
        parts = [safe(str(environ.get("REQUEST_METHOD"))), safe(str(environ.get("PATH_INFO")))]
        correlation_id = self.correlation_id or environ.get(CORRELATION_ID_KEY)
        if correlation_id:
            parts.append(f"correlation_id={correlation_id}")
        request_id = environ.get(REQUEST_ID_KEY)
        if request_id and request_id != correlation_id:
            parts.append(f"request_id={safe(request_id)}")
        return " ".join(parts)


in_flight = InFlight()


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
        # Left in place after the request: a sync worker answers one request at a time, and
        # gunicorn's timeout only ever interrupts one in the middle.
        in_flight.environ = environ
        in_flight.correlation_id = None
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return self.app(environ, start_response)
        started = perf_counter()

        def logged_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            correlation_id = environ.get(CORRELATION_ID_KEY, "-")
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
            # makeRecord + handle is logger.info without its stack walk for the caller's
            # file and line, which would be this line anyway.
            logger.handle(
                logger.makeRecord(logger.name, logging.INFO, __file__, 0, line, args, None)
            )
            return start_response(status, headers, exc_info)

        return self.app(environ, logged_start_response)
