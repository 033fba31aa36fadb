"""The request log: one line per request, and what is known of each request in flight.

Request lines come from a WSGI middleware rather than from Flask hooks so that every request
is counted once, whichever way it ends (a view, the error handler, a routing 404/405, a 413),
with one logger call and nothing at all when INFO is disabled::

    POST /predict 200 0.41ms correlation_id=6f1c...
    POST /predict 200 0.41ms correlation_id=order-17 request_id=0d4e...

``request_id`` is nginx's id of the request (production mode, header ``X-Request-Id``), shown
when it is not the correlation id itself, i.e. when the client sent its own: nginx answers
a 504, 502 or 413 with its id, and this is how such an answer is found in this log. The
record also carries the line's values as ``request_fields`` (the JSON format's fields).

Values that come from the client (the path, the correlation id) are logged with every
non-printable character escaped (:func:`catwalk.server.logs.safe`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from time import perf_counter
from typing import Any

from catwalk.server.environ import (
    CORRELATION_ID_KEY,
    IN_FLIGHT_KEY,
    MODEL_KEY,
    REQUEST_ID_KEY,
    StartResponse,
    WsgiApp,
    default_correlation_id,
)
from catwalk.server.logs import request_line_writer, safe

_LINE = "%s %s %s %.2fms correlation_id=%s"
_LINE_WITH_REQUEST_ID = _LINE + " request_id=%s"
_MODEL = " model=%s@%s"  # a model repository's lines name the model that answered


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
            method = environ.get("REQUEST_METHOD")
            path = path if path.isprintable() else safe(path)
            duration = (perf_counter() - started) * 1000.0
            code = status[:3]
            args: tuple[Any, ...] = (method, path, code, duration, correlation_id)
            fields = {
                "method": method,
                "path": path,
                "status": int(code) if code.isdigit() else code,
                "duration_ms": round(duration, 3),
                "correlation_id": correlation_id,
            }
            line = _LINE
            if request_id is not None and request_id != correlation_id:
                line = _LINE_WITH_REQUEST_ID
                fields["request_id"] = safe(request_id)
                args += (fields["request_id"],)
            model = environ.get(MODEL_KEY)
            if model is not None:
                line += _MODEL
                fields["model_name"], fields["model_version"] = safe(model[0]), safe(model[1])
                args += (fields["model_name"], fields["model_version"])
            write = request_line_writer(logger)
            if write is not None:  # the same line, without a LogRecord
                write(logger.name, line % args, fields)
                return start_response(status, headers, exc_info)
            # makeRecord + handle is logger.info without its stack walk for the caller's
            # file and line, which would be this line anyway.
            record = logger.makeRecord(logger.name, logging.INFO, __file__, 0, line, args, None)
            record.request_fields = fields
            logger.handle(record)
            return start_response(status, headers, exc_info)

        return self.app(environ, logged_start_response)
