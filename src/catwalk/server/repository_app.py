"""The app of a model repository: every model of ``-m`` behind one server.

:func:`create_repository_app` is :func:`~catwalk.server.app.create_app` for a
:class:`~catwalk.repository.load.LoadedRepository`: the same ``/status``, ``/docs``, error
handling, metrics, auth, ``/ready`` and request log (:func:`~catwalk.server.app.base_app`,
:func:`~catwalk.server.ops.wrap`), with :class:`~catwalk.server.repository_routes.
RepositoryRoutes` choosing the model of each request. Each model has its own predictor, its
own ``/v2`` routes and, when it declares ``batching:``, its own collector. ``/info`` lists
every model's ``model.yml``; ``/openapi.json`` documents each model's own schema
(:mod:`catwalk.server.repository_openapi`).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from flask import Flask

from catwalk.config import ServerSettings
from catwalk.repository.load import LoadedRepository
from catwalk.server import ops, readiness
from catwalk.server.app import base_app
from catwalk.server.batching import make_batcher
from catwalk.server.envelope import Predictor
from catwalk.server.logs import LOGGER_NAME, RequestLog
from catwalk.server.metrics import Metrics
from catwalk.server.model_metrics import ModelMetrics
from catwalk.server.repository_openapi import repository_document
from catwalk.server.repository_routes import RepositoryRoutes, Served
from catwalk.server.shadow import ShadowRunner
from catwalk.server.v2_routes import V2Routes


def create_repository_app(loaded: LoadedRepository, settings: ServerSettings) -> Flask:
    """Build the REST app serving every model of ``loaded`` with ``settings``."""
    log = logging.getLogger(LOGGER_NAME)
    routing = loaded.routing
    title = f"catwalk model repository ({routing.repository.root.name})"
    info_body = orjson.dumps(
        {
            "default": routing.default_name,
            "models": [
                {**entry.spec.info(), "default": routing.defaults[entry.name] is entry}
                for entry in routing.entries
            ],
        }
    )
    served: dict[str, Served] = {}

    def document() -> dict[str, Any]:
        return repository_document(routing, served, log, auth=settings.auth.enabled)

    app = base_app(settings, log, title, info_body, document)
    specs = [entry.spec for entry in routing.entries]
    metrics = Metrics(specs[0]) if settings.metrics else None
    shadows = [entry.spec for entry in routing.shadows.values()]
    model_metrics = ModelMetrics(metrics, specs, shadows) if metrics is not None else None
    for entry in routing.entries:
        model = loaded.model(entry)
        if metrics is not None and model_metrics is not None:
            untimed = getattr(model.predict, "__wrapped__", model.predict)
            untimed = getattr(untimed, "__wrapped__", untimed)
            timed = model_metrics.time_predict(entry.spec, metrics.time_predict(untimed))
            model.predict = timed  # type: ignore[method-assign,assignment]
        batcher = make_batcher(model, settings)
        if batcher is not None and metrics is not None:
            batcher.run = metrics.time_batches(batcher.run)
        predictor = Predictor(
            model,
            validate_output=settings.validate_output,
            batcher=batcher,
            max_depth=settings.max_depth,
        )
        predictor.check_model = False  # the routes picked this model for the request
        v2 = V2Routes(app.wsgi_app, predictor, settings, log)
        served[entry.ref] = Served(entry, model, predictor, v2)
    runner = ShadowRunner(log, model_metrics)
    app.extensions["catwalk.served"] = served
    app.extensions["catwalk.shadows"] = runner
    app.extensions["catwalk.metrics"] = metrics
    routes = RepositoryRoutes(
        app.wsgi_app,
        routing,
        served,
        settings.max_body_bytes,
        settings.max_body_size,
        log,
        model_metrics,
        runner,
    )
    app.extensions["catwalk.repository_routes"] = routes
    app.wsgi_app = RequestLog(  # type: ignore[method-assign]
        ops.wrap(routes, settings, metrics, log), log
    )
    readiness.state.loaded = True  # every model is loaded: loading one more never happens
    return app
