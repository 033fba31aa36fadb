"""``POST /predict`` as a plain WSGI call, answered before Flask's request machinery.

Flask's request and response objects, routing and context push cost more per request than
all of catwalk's own work on a predict (bench/RESULTS.md). :class:`PredictRoute` is the app's
``wsgi_app``: it answers ``POST /predict`` itself — the body read from ``wsgi.input``, the
:class:`~catwalk.server.envelope.Predictor` (envelope, validation, model, output), the error
JSON of :mod:`catwalk.server.failures`, the request log line of
:class:`~catwalk.server.logs.RequestLog` — and hands every other request (``/status``,
``/info``, a 404, a 405, a body without Content-Length or above the limit, which Flask
answers with 413) to Flask unchanged. The answers are the same bytes, statuses and headers
either way (tests/server compare them).

It sits where Flask's ``wsgi_app`` was: the request log, metrics, auth and ``/ready``
(:mod:`catwalk.server.ops.layers`) wrap it, so they see every request, fast or not.
"""

from __future__ import annotations

import logging
from typing import Any

from catwalk.server.envelope import Predictor
from catwalk.server.environ import (
    CORRELATION_ID_KEY,
    IN_FLIGHT_KEY,
    StartResponse,
    WsgiApp,
    default_correlation_id,
)
from catwalk.server.failures import error_answer, status_line

JSON = "application/json"


class PredictRoute:
    """WSGI app: ``POST /predict`` here, everything else to ``other`` (Flask's wsgi_app)."""

    def __init__(
        self,
        other: WsgiApp,
        predictor: Predictor,
        max_body_bytes: int,
        log: logging.Logger,
    ) -> None:
        self.other = other
        self.predictor = predictor
        self.max_body_bytes = max_body_bytes
        self.log = log
        self._status = {code: status_line(code) for code in (400, 404, 413, 500, 504)}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        if environ.get("PATH_INFO") != "/predict" or environ.get("REQUEST_METHOD") != "POST":
            return self.other(environ, start_response)
        length = environ.get("CONTENT_LENGTH")
        if not length or not length.isdigit() or int(length) > self.max_body_bytes:
            return self.other(environ, start_response)  # chunked, or Flask's 413
        body = environ["wsgi.input"].read(int(length))
        try:
            correlation_id, answer = self.predictor.handle(
                body, default_correlation_id(environ), environ.get(IN_FLIGHT_KEY)
            )
        except Exception as exc:  # PredictFailed, or catwalk's own bug: JSON either way
            code, extra, answer = error_answer(exc, environ, self.log)
            status = self._status.get(code) or status_line(code)
            headers = [("Content-Type", JSON), ("Content-Length", str(len(answer)))]
            headers += extra.items()
        else:
            environ[CORRELATION_ID_KEY] = correlation_id
            status = "200 OK"
            headers = [("Content-Type", JSON), ("Content-Length", str(len(answer)))]
        start_response(status, headers)
        return [answer]
