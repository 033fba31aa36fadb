"""The app of a model repository: every model of ``-m`` behind one server.

:func:`create_repository_app` is :func:`~catwalk.server.app.create_app` for a
:class:`~catwalk.repository.load.LoadedRepository`: the same ``/status``, ``/docs``, error
handling (:func:`~catwalk.server.app.common_routes`), metrics, auth, ``/ready`` and request log
(:func:`~catwalk.server.ops.layers.wrap`), with :class:`~catwalk.server.repository_routes.
RepositoryRoutes` choosing the model of each request. Each model has its own predictor, its
own ``/v2`` routes and, when it declares ``batching:``, its own collector. ``/info`` lists
every model's ``model.yml``; ``/openapi.json`` documents each model's own schema
(:mod:`catwalk.server.repository_openapi`). The :class:`RepositoryApp` holds all of it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from flask import Flask

from catwalk.config import ServerSettings
from catwalk.repository.load import LoadedRepository
from catwalk.server.app import common_routes
from catwalk.server.batching import make_batcher
from catwalk.server.envelope import Predictor
from catwalk.server.environ import WsgiApp
from catwalk.server.logs import LOGGER_NAME
from catwalk.server.model_metrics import ModelMetrics
from catwalk.server.ops import layers
from catwalk.server.ops.metrics import Metrics
from catwalk.server.ops.readiness import Readiness
from catwalk.server.ops.request_log import RequestLog
from catwalk.server.repository_openapi import repository_document
from catwalk.server.repository_routes import RepositoryRoutes, Served
from catwalk.server.shadow import ShadowRunner
from catwalk.server.v2_routes import V2Routes
from catwalk.tracing import tracing_for

if TYPE_CHECKING:
    from catwalk.tracing.server import Tracing


class RepositoryApp(Flask):
    """The Flask app of a model repository, holding what it owns (nothing of it is global)."""

    served: dict[str, Served]  # by name@version: each model's predictor and /v2 routes
    metrics: Metrics | None  # None when server.metrics is off
    model_metrics: ModelMetrics | None
    readiness: Readiness  # what GET /ready answers: every model loaded (and warmed up)
    shadows: ShadowRunner
    routes: RepositoryRoutes
    tracing: Tracing | None  # catwalk.tracing: None when off (OpenTelemetry never imported)

    def attach_loop(self, loop: asyncio.AbstractEventLoop, reading: Callable[[], int]) -> bool:
        """Run every batching model's collector on ``loop`` (catwalk's worker); False when no
        model is batched: the worker then answers one request at a time."""
        batchers = [s.predictor.batcher for s in self.served.values() if s.predictor.batcher]
        for batcher in batchers:
            batcher.attach(loop, reading)
        return bool(batchers)


def create_repository_app(loaded: LoadedRepository, settings: ServerSettings) -> RepositoryApp:
    """Build the REST app serving every model of ``loaded`` with ``settings``."""
    app = RepositoryApp("catwalk.server")
    log = logging.getLogger(LOGGER_NAME)
    routing = loaded.routing
    specs = [entry.spec for entry in routing.entries]
    shadows = [entry.spec for entry in routing.shadows.values()]
    metrics = Metrics(specs[0]) if settings.metrics else None
    model_metrics = ModelMetrics(metrics, specs, shadows) if metrics is not None else None
    app.metrics, app.model_metrics, app.readiness = metrics, model_metrics, Readiness()
    # Named after the repository's folder; each span names its model.
    app.tracing = tracing_for(
        settings, specs[0], metrics, repository=True, name=routing.repository.root.name
    )
    app.served = {}
    info_body = orjson.dumps(
        {
            "default": routing.default_name,
            "models": [
                {**entry.spec.info(), "default": routing.defaults[entry.name] is entry}
                for entry in routing.entries
            ],
        }
    )

    def document() -> dict[str, Any]:
        return repository_document(routing, app.served, log, auth=settings.auth.enabled)

    title = f"catwalk model repository ({routing.repository.root.name})"
    common_routes(app, settings, log, title, info_body, document)
    for entry in routing.entries:
        model = loaded.model(entry)
        predict: Callable[[Any], Any] = model.predict
        if metrics is not None and model_metrics is not None:  # the server's and the model's
            predict = model_metrics.time_predict(entry.spec, metrics.time_predict(predict))
        batcher = make_batcher(model, settings)
        if batcher is not None and metrics is not None:
            batcher.run = metrics.time_batches(batcher.run)
        predictor = Predictor(
            model,
            validate_output=settings.validate_output,
            batcher=batcher,
            max_depth=settings.max_depth,
            predict=predict,
        )
        predictor.check_model = False  # the routes picked this model for the request
        v2 = V2Routes(app.wsgi_app, predictor, settings, log, app.readiness)
        if app.tracing is not None:
            app.tracing.instrument(predictor, v2)
        app.served[entry.ref] = Served(entry, model, predictor, v2)
    app.shadows = ShadowRunner(log, model_metrics)
    if app.tracing is not None:
        app.tracing.trace_shadows(app.shadows)
    app.routes = RepositoryRoutes(
        app.wsgi_app,
        routing,
        app.served,
        settings.max_body_bytes,
        settings.max_body_size,
        log,
        model_metrics,
        app.shadows,
    )
    wsgi_app: WsgiApp = RequestLog(
        layers.wrap(app.routes, settings, metrics, log, app.readiness), log
    )
    if app.tracing is not None:  # outermost: the request line is logged inside the span
        wsgi_app = app.tracing.wrap(wsgi_app)
    app.wsgi_app = wsgi_app  # type: ignore[method-assign,assignment]
    return app
