"""catwalk's operational WSGI pieces, put around whatever app answers the model's routes.

From the outside in: :class:`~catwalk.server.ops.metrics.CountRequests` (every request counted
and timed, 401s included), :class:`~catwalk.server.ops.auth.BearerAuth` (when
``server.auth`` is on), then :class:`Endpoints`, which answers ``GET /ready`` and
``GET /metrics`` itself. They are WSGI middleware rather than Flask hooks so that they work
the same whatever serves ``/predict`` (Flask or a plain WSGI callable), and each costs one
call and a few dictionary look-ups per request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from catwalk.config import ServerSettings
from catwalk.correlation import new_correlation_id
from catwalk.server.environ import (
    CORRELATION_ID_KEY,
    REQUEST_ID_KEY,
    StartResponse,
    WsgiApp,
    error_body,
)
from catwalk.server.ops.auth import BearerAuth, Tokens
from catwalk.server.ops.metrics import METRICS_PATH, CountRequests, Metrics, answer_metrics
from catwalk.server.ops.readiness import READY_PATH, Readiness, answer_ready

_READ = ("GET", "HEAD")


class Endpoints:
    """WSGI middleware answering ``/ready`` and ``/metrics``; everything else goes on."""

    def __init__(self, app: WsgiApp, metrics: Metrics | None, readiness: Readiness) -> None:
        self.app = app
        self.metrics = metrics
        self.readiness = readiness

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == READY_PATH or (path == METRICS_PATH and self.metrics is not None):
            method = environ.get("REQUEST_METHOD")
            if method not in _READ:
                return _not_allowed(environ, start_response, path)
            if path == READY_PATH:
                return answer_ready(self.readiness, environ, start_response)
            assert self.metrics is not None
            return answer_metrics(self.metrics, environ, start_response)
        return self.app(environ, start_response)


def _not_allowed(
    environ: dict[str, Any], start_response: StartResponse, path: str
) -> Iterable[bytes]:
    correlation_id = environ.get(REQUEST_ID_KEY) or new_correlation_id()
    environ[CORRELATION_ID_KEY] = correlation_id
    method = str(environ.get("REQUEST_METHOD"))[:16]
    start_response(
        "405 Method Not Allowed",
        [("Content-Type", "application/json"), ("Allow", "GET, HEAD")],
    )
    message = f"method not allowed: {method} {path} (allowed: GET)"
    return [error_body(correlation_id, message)]


class NoSniff:
    """WSGI middleware: every answer says ``X-Content-Type-Options: nosniff`` (a browser must
    never take a JSON answer that quotes the request for HTML). catwalk's production worker
    writes the header itself, on what it answers without the app too."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        def nosniff(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.append(_NOSNIFF)
            return start_response(status, headers, exc_info)

        return self.app(environ, nosniff)


_NOSNIFF = ("X-Content-Type-Options", "nosniff")


def wrap(
    app: WsgiApp,
    settings: ServerSettings,
    metrics: Metrics | None,
    log: logging.Logger,
    readiness: Readiness,
) -> WsgiApp:
    """``app`` inside the metrics, auth and /ready + /metrics pieces ``settings`` ask for, and
    the nosniff header."""
    wrapped: WsgiApp = Endpoints(app, metrics, readiness)
    if settings.auth.tokens_file is not None:
        wrapped = BearerAuth(wrapped, Tokens(settings.auth.tokens_file, log))
    if metrics is not None:
        wrapped = CountRequests(wrapped, metrics)
    return NoSniff(wrapped)
