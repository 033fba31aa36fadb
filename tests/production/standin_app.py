"""A tiny stand-in for catwalk.server.app.create_app, used until (or besides) the real one.

It speaks just enough of the REST contract for production-mode tests: /status, /info and a
/predict that unwraps ``{"input": ...}`` and answers ``{"output": ...}`` (500 JSON on errors).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

from catwalk.config import ServerSettings
from catwalk.errors import CatwalkError
from catwalk.model import LoadedModel


def create_app(model: LoadedModel, settings: ServerSettings) -> Flask:
    app = Flask("standin")

    @app.get("/status")
    def status() -> Any:
        return jsonify(status="ok")

    @app.get("/info")
    def info() -> Any:
        return jsonify(model.spec.info())

    @app.post("/predict")
    def predict() -> Any:
        body = request.get_json(force=True)
        try:
            return jsonify(output=model.predict(body["input"]))
        except CatwalkError as exc:
            return jsonify(output={"message": str(exc)}), exc.status

    return app
