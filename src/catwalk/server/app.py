"""The Flask application: routes, and the one handler that turns every error into JSON.

:func:`create_app` builds the app for one loaded model; nothing is created at import time and
no module global holds the model, so the debug server, the production gunicorn workers and the
tests each build their own. Routes:

- ``GET /status`` -> 200 ``{"status": "ok"}``
- ``GET /info``   -> 200 the model's spec (``ModelSpec.info()``)
- ``POST /predict`` -> the envelope (see :mod:`catwalk.server.envelope`)

Behind catwalk's nginx (production mode) the WSGI environ carries nginx's request id
(:data:`~catwalk.server.logs.REQUEST_ID_KEY`, set by :mod:`catwalk.server.wsgi` from the
``X-Request-Id`` header nginx always sets): it is the correlation id of a request that brings
none, so the ids nginx puts in its own 502/504/413 answers are the ones in this app's log.

``POST /predict`` itself is answered by :class:`~catwalk.server.predict_route.PredictRoute`,
the app's ``wsgi_app``, before Flask's request machinery (the view below serves only what that
route hands on, e.g. a chunked body). Every error — a :class:`~catwalk.errors.CatwalkError`
(its ``status`` is the HTTP status), an HTTP error raised by Flask/Werkzeug (404, 405, 413) or
an unexpected exception (500) — becomes ``{"correlation_id": ..., "output": {"message":
...}}`` with ``Content-Type: application/json`` (:mod:`catwalk.server.failures`).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from catwalk.config import ServerSettings
from catwalk.model import LoadedModel
from catwalk.server import messages
from catwalk.server.batching import make_batcher
from catwalk.server.envelope import Predictor
from catwalk.server.failures import error_answer
from catwalk.server.logs import CORRELATION_ID_KEY, LOGGER_NAME, REQUEST_ID_KEY, RequestLog
from catwalk.server.predict_route import PredictRoute

JSON = "application/json"
ROUTES = ("GET /status", "GET /info", "POST /predict")

__all__ = ["Predictor", "create_app", "handle_predict"]


def handle_predict(predictor: Predictor, body: bytes) -> tuple[str, bytes]:
    """Answer one ``POST /predict`` body without HTTP: ``(correlation_id, response body)``.

    Raises :class:`~catwalk.server.envelope.PredictFailed`. This is all of catwalk's own
    per-request work (envelope, validation, the model, normalisation, serialisation).
    """
    return predictor.handle(body)


def create_app(model: LoadedModel, settings: ServerSettings) -> Flask:
    """Build the REST app serving ``model`` with ``settings`` (body limit, output checks)."""
    app = Flask("catwalk.server")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    log = logging.getLogger(LOGGER_NAME)
    predictor = Predictor(
        model, validate_output=settings.validate_output, batcher=make_batcher(model, settings)
    )
    app.extensions["catwalk"] = predictor  # its .batcher (None: unbatched) has the batch numbers
    response_class = app.response_class
    # Bodies that never change are serialised once.
    status_body = orjson.dumps({"status": "ok"})
    info_body = orjson.dumps(model.spec.info())

    @app.get("/status")
    def status() -> Response:
        return response_class(status_body, 200, content_type=JSON)

    @app.get("/info")
    def info() -> Response:
        return response_class(info_body, 200, content_type=JSON)

    @app.post("/predict")
    def predict() -> Response:
        environ = request.environ
        correlation_id, body = predictor.handle(
            request.get_data(cache=False), environ.get(REQUEST_ID_KEY)
        )
        environ[CORRELATION_ID_KEY] = correlation_id
        return response_class(body, 200, content_type=JSON)

    def on_error(exc: Exception) -> Response:
        return _error_handler(exc, settings, log, response_class)

    app.register_error_handler(Exception, on_error)
    # POST /predict is answered before Flask's request machinery; everything else goes
    # through Flask. Both log their request line and answer errors the same way.
    app.wsgi_app = PredictRoute(  # type: ignore[method-assign]
        RequestLog(app.wsgi_app, log), predictor, settings.max_body_bytes, log
    )
    return app


def _error_handler(
    exc: Exception, settings: ServerSettings, log: logging.Logger, response_class: Any
) -> Response:
    """Flask's side of the one place where an error becomes a response (catwalk.server.failures)."""
    status, headers, body = error_answer(
        exc, request.environ, log, lambda error: _http_message(error, settings)
    )
    response: Response = response_class(body, status, headers=headers, content_type=JSON)
    return response


def _http_message(error: HTTPException, settings: ServerSettings) -> str:
    where = f"{request.method} {request.path}"
    if isinstance(error, NotFound):
        return f"no such endpoint: {where} (endpoints: {', '.join(ROUTES)})"
    if isinstance(error, MethodNotAllowed):
        allowed = ", ".join(m for m in error.valid_methods or () if m not in ("HEAD", "OPTIONS"))
        return f"method not allowed: {where} (allowed: {allowed})"
    if isinstance(error, RequestEntityTooLarge):
        return messages.too_large(settings.max_body_size)
    return f"{error.name}: {error.description}" if error.description else str(error.name)
