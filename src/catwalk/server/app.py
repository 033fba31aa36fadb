"""The Flask application: routes, and the one handler that turns every error into JSON.

:func:`create_app` builds the app for one loaded model; nothing is created at import time and
no module global holds the model or anything of the app: the :class:`ModelApp` holds its
predictor (and batching collector), metrics and readiness, so the debug server, the production
gunicorn workers and the tests each build their own, and two apps share nothing. Routes:

- ``GET /status`` -> 200 ``{"status": "ok"}``
- ``GET /info``   -> 200 the model's spec (``ModelSpec.info()``)
- ``POST /predict`` -> the envelope (see :mod:`catwalk.server.envelope`)
- ``/v2/...`` -> the Open Inference Protocol (:mod:`catwalk.server.v2_routes`)
- ``GET /openapi.json`` -> the OpenAPI document (:mod:`catwalk.server.openapi`), built at its
  first request (it calls the model's ``load_test_data`` for an example)
- ``GET /docs`` (and ``/docs/<asset>``) -> Swagger UI, offline (:mod:`catwalk.server.docs`)
- ``GET /ready``, ``GET /metrics`` and bearer-token checks are WSGI pieces around this app
  (:mod:`catwalk.server.ops.layers`), so they work whatever answers the other routes.

A request whose body brings no correlation id takes the client's ``X-Correlation-Id`` header
(when well formed), else nginx's request id (production mode: the WSGI environ's
:data:`~catwalk.server.environ.REQUEST_ID_KEY`, set by :mod:`catwalk.server.worker.wsgi`), so
the ids nginx puts in its own 502/504/413 answers are the ones in this app's log.

Every error — a :class:`~catwalk.errors.CatwalkError` (its ``status`` is the HTTP status), an
HTTP error raised by Flask/Werkzeug (404, 405, 413) or an unexpected exception (500) — goes
through :func:`_error_handler` and becomes ``{"correlation_id": ..., "output": {"message":
...}}`` with ``Content-Type: application/json``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from catwalk.config import ServerSettings
from catwalk.model import LoadedModel
from catwalk.server import docs, messages
from catwalk.server.batching import make_batcher
from catwalk.server.envelope import Predictor
from catwalk.server.environ import (
    CORRELATION_ID_KEY,
    IN_FLIGHT_KEY,
    WsgiApp,
    default_correlation_id,
)
from catwalk.server.failures import error_answer
from catwalk.server.logs import LOGGER_NAME
from catwalk.server.openapi import example_inputs, openapi_document
from catwalk.server.ops import layers
from catwalk.server.ops.metrics import Metrics
from catwalk.server.ops.readiness import Readiness
from catwalk.server.ops.request_log import RequestLog
from catwalk.server.predict_route import PredictRoute
from catwalk.server.v2_openapi import add_v2
from catwalk.server.v2_routes import V2Routes
from catwalk.tracing import tracing_for

if TYPE_CHECKING:
    from catwalk.tracing.server import Tracing

JSON = "application/json"
ROUTES = messages.ROUTES


class ModelApp(Flask):
    """The Flask app of one served model, holding what it owns: nothing of it is global, so
    two apps in one process (tests) share nothing."""

    predictor: Predictor  # its .batcher (None: unbatched) has the batch numbers
    metrics: Metrics | None  # None when server.metrics is off
    readiness: Readiness  # what GET /ready answers
    predict_route: PredictRoute
    tracing: Tracing | None  # catwalk.tracing: None when off (OpenTelemetry never imported)

    def attach_loop(self, loop: asyncio.AbstractEventLoop, reading: Callable[[], int]) -> bool:
        """Run the batching collector on ``loop`` (catwalk's worker: one thread, a greenlet per
        request; ``reading()`` counts the requests half read). False when the model is not
        batched: the worker then answers one request at a time."""
        batcher = self.predictor.batcher
        if batcher is None:
            return False
        batcher.attach(loop, reading)
        return True


def create_app(model: LoadedModel, settings: ServerSettings) -> ModelApp:
    """Build the REST app serving ``model`` with ``settings`` (body limit, output checks)."""
    app = ModelApp("catwalk.server")
    log = logging.getLogger(LOGGER_NAME)
    metrics = Metrics(model.spec) if settings.metrics else None
    batcher = make_batcher(model, settings)
    if batcher is not None and metrics is not None:
        batcher.run = metrics.time_batches(batcher.run)  # batch sizes and the model's time
    predictor = Predictor(
        model,
        validate_output=settings.validate_output,
        batcher=batcher,
        max_depth=settings.max_depth,
        # The model's own time, for /metrics (the model object itself is left as it is).
        predict=metrics.time_predict(model.predict) if metrics is not None else None,
    )
    app.predictor = predictor
    app.metrics = metrics
    app.readiness = Readiness()
    app.tracing = tracing_for(settings, model.spec, metrics)  # None when off: no OpenTelemetry

    def document() -> dict[str, Any]:
        examples, output = example_inputs(model, log)
        found = openapi_document(
            model.spec, examples=examples, example_output=output, auth=settings.auth.enabled
        )
        add_v2(found, predictor, examples, auth=settings.auth.enabled)
        return found

    common_routes(app, settings, log, model.spec.name, orjson.dumps(model.spec.info()), document)
    response_class = app.response_class

    @app.post("/predict", provide_automatic_options=False)
    def predict() -> Response:
        environ = request.environ
        correlation_id, body = predictor.handle(
            request.get_data(cache=False),
            default_correlation_id(environ),
            environ.get(IN_FLIGHT_KEY),
        )
        environ[CORRELATION_ID_KEY] = correlation_id
        return response_class(body, 200, content_type=JSON)

    # POST /predict is answered before Flask's request machinery (PredictRoute); everything
    # else goes through Flask. The operational pieces (metrics, auth, /ready) and the request
    # log wrap both alike.
    v2 = V2Routes(app.wsgi_app, predictor, settings, log, app.readiness)  # Open Inference
    app.predict_route = PredictRoute(v2, predictor, settings.max_body_bytes, log)
    wsgi_app: WsgiApp = RequestLog(
        layers.wrap(app.predict_route, settings, metrics, log, app.readiness), log
    )
    if app.tracing is not None:  # outermost: the request line is logged inside the span
        app.tracing.instrument(predictor, v2)
        wsgi_app = app.tracing.wrap(wsgi_app)
    app.wsgi_app = wsgi_app  # type: ignore[method-assign,assignment]
    return app


def common_routes(
    app: Flask,
    settings: ServerSettings,
    log: logging.Logger,
    title: str,
    info_body: bytes,
    document: Callable[[], dict[str, Any]],
) -> None:
    """What every server's app has, one model or a repository: ``/status``, ``/info``
    (``info_body``), ``/openapi.json`` (``document()``, built at its first request: it calls
    the models' ``load_test_data`` for examples), ``/docs`` (titled ``title``), the body limit
    and the one error handler."""
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    response_class = app.response_class
    # Bodies that never change are serialised once.
    status_body = orjson.dumps({"status": "ok"})

    # No automatic OPTIONS answer (Flask's is an empty 200 text/html): OPTIONS is a 405 JSON
    # error with an Allow header, like any other method a route does not take.
    @app.get("/status", provide_automatic_options=False)
    def status() -> Response:
        return response_class(status_body, 200, content_type=JSON)

    @app.get("/info", provide_automatic_options=False)
    def info() -> Response:
        return response_class(info_body, 200, content_type=JSON)

    openapi_body: list[bytes] = []  # built at the first GET /openapi.json, then kept

    @app.get("/openapi.json", provide_automatic_options=False)
    def openapi_json() -> Response:
        if not openapi_body:
            openapi_body.append(orjson.dumps(document()))
        return response_class(openapi_body[0], 200, content_type=JSON)

    docs_page = docs.page(title)

    @app.get("/docs", provide_automatic_options=False)
    def docs_index() -> Response:
        response: Response = response_class(docs_page, 200, content_type="text/html; charset=utf-8")
        response.headers["Content-Security-Policy"] = docs.CSP
        return response

    @app.get("/docs/<name>", provide_automatic_options=False)
    def docs_asset(name: str) -> Response:
        found = docs.asset(name)
        if found is None:
            raise NotFound()
        body, content_type, etag = found
        headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
        if request.headers.get("If-None-Match") == etag:
            return response_class(b"", 304, headers=headers)
        return response_class(body, 200, headers=headers, content_type=content_type)

    def on_error(exc: Exception) -> Response:
        return _error_handler(exc, settings, log, response_class)

    app.register_error_handler(Exception, on_error)


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
