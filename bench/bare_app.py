"""The "bare" baseline: a plain Flask app doing the same predict as catwalk, nothing else.

No envelope, no validation, no normalisation, no request log: the body is the model's input, the
answer is ``{"correlation_id", "input", "output"}`` exactly like
``../shared/bench/apps/flask_app.py``. bench/run.py serves it with the same production machinery
as catwalk (:func:`catwalk.server.production.supervisor.serve_production`: same nginx.conf, same
gunicorn config) on the seed's worker model (gunicorn ``sync``, a new upstream connection per
request): the seed's stack, with nothing of catwalk's in the request path.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Flask, request

from catwalk.config import ServerSettings
from catwalk.model import LoadedModel


def create_app(model: LoadedModel, settings: ServerSettings) -> Flask:
    app = Flask("bare")
    predict = model.instance.predict

    @app.get("/status")
    def status() -> Any:
        return "", 200

    @app.post("/predict")
    def predict_route() -> Any:
        X = request.get_json(force=True)
        return {
            "correlation_id": request.headers.get("X-Correlation-ID") or uuid.uuid4().hex,
            "input": X,
            "output": predict(X),
        }

    return app
