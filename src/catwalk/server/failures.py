"""Any error of a request -> the JSON error response: status, headers, body, and its log line.

One place for both ways a request is answered: the Flask app's error handler
(:mod:`catwalk.server.app`) and the plain-WSGI ``POST /predict`` route
(:mod:`catwalk.server.predict_route`). Every error — a :class:`~catwalk.errors.CatwalkError`
(its ``status`` is the HTTP status), an HTTP error raised by Flask/Werkzeug (404, 405, 413) or
an unexpected exception (500) — becomes ``{"correlation_id": ..., "output": {"message":
...}}``; 5xx errors are logged with the correlation id (a model's traceback under it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.http import HTTP_STATUS_CODES

from catwalk.correlation import new_correlation_id
from catwalk.errors import CatwalkError, ModelError
from catwalk.model import describe
from catwalk.server.envelope import PredictFailed
from catwalk.server.environ import CORRELATION_ID_KEY, default_correlation_id, error_body
from catwalk.server.logs import safe


def status_line(code: int) -> str:
    """``400 BAD REQUEST``: the WSGI status string of a code, as Werkzeug writes it."""
    return f"{code} {HTTP_STATUS_CODES.get(code, 'UNKNOWN').upper()}"


def error_answer(
    exc: BaseException,
    environ: dict[str, Any],
    log: logging.Logger,
    http_message: Callable[[HTTPException], str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """``(status, extra headers, JSON body)`` for ``exc``; sets the request's correlation id."""
    correlation_id: str | None = None
    error: BaseException = exc
    if isinstance(exc, PredictFailed):
        correlation_id, error = exc.correlation_id, exc.error
    headers: dict[str, str] = {}
    if isinstance(error, CatwalkError):
        status, message = error.status, error.message
    elif isinstance(error, HTTPException):
        status = error.code or 500
        message = http_message(error) if http_message else str(error.name)
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)
    else:
        status, message = 500, f"internal server error: {describe(error)}"
    if correlation_id is None:
        correlation_id = default_correlation_id(environ) or new_correlation_id()
    environ[CORRELATION_ID_KEY] = correlation_id
    logged_id = safe(correlation_id)
    ids = {"correlation_id": correlation_id}  # a field of its own in JSON logs

    if status >= 500:
        # Messages may quote the request: logged with control characters escaped. A model's
        # traceback stays a block of lines, each indented under the message.
        if isinstance(error, ModelError):
            details = "\n".join("    " + safe(line) for line in error.details.splitlines())
            log.error("correlation_id=%s %s\n%s", logged_id, safe(message), details, extra=ids)
        elif isinstance(error, CatwalkError):
            log.error("correlation_id=%s %s", logged_id, safe(message), extra=ids)
        else:
            log.error("correlation_id=%s %s", logged_id, safe(message), exc_info=error, extra=ids)
    elif log.isEnabledFor(logging.DEBUG):
        log.debug("correlation_id=%s %d %s", logged_id, status, safe(message), extra=ids)
    return status, headers, error_body(correlation_id, message)
