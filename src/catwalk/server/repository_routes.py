"""A model repository's model routes: which loaded model answers, and the answer's headers.

:class:`RepositoryRoutes` is plain WSGI, in the place :class:`~catwalk.server.predict_route.
PredictRoute` has for one model (inside the request log, metrics, auth and ``/ready``):

- ``POST /predict``: the body's ``model: {name, version}`` picks that model, ``{name}`` that
  name's default version (or its canary split), no ``model`` the repository's default name;
- ``POST /models/{name}/predict`` and ``POST /models/{name}/versions/{version}/predict``: the
  path picks the model (a body that names another is a 400);
- ``GET /models``: the repository index (name, version, default, traffic, shadow);
- ``/v2/models/{name}[/versions/{version}]/...``: the Open Inference Protocol, answered by that
  model's :class:`~catwalk.server.v2_routes.V2Routes`; ``/v2`` and ``/v2/health/*`` by any.

A name or version not loaded is a 404 naming what is loaded (:meth:`Routing.not_found`).
Every answer a model gave says which in ``X-Catwalk-Model: name@version`` (and the request log
line, through :data:`~catwalk.server.environ.MODEL_KEY`); a request for a name with a shadow
hands its answer to the shadow thread (:mod:`catwalk.server.shadow`) once it is complete.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from catwalk.correlation import new_correlation_id
from catwalk.errors import CatwalkError, InvalidRequest
from catwalk.json_codec import kind
from catwalk.model import LoadedModel
from catwalk.protocol import paths
from catwalk.repository.discover import ModelEntry
from catwalk.repository.routing import Routing
from catwalk.server import messages
from catwalk.server.envelope import PredictFailed, Predictor
from catwalk.server.environ import (
    CORRELATION_ID_KEY,
    IN_FLIGHT_KEY,
    MODEL_KEY,
    StartResponse,
    WsgiApp,
    default_correlation_id,
)
from catwalk.server.failures import error_answer, status_line
from catwalk.server.model_metrics import ModelMetrics
from catwalk.server.shadow import ShadowJob, ShadowRunner
from catwalk.server.v2_routes import V2Routes

JSON = "application/json"
MODEL_HEADER = "X-Catwalk-Model"
MODELS_PATH = "/models"
_PREFIX = "/models/"
_PREDICT = "/predict"
_VERSIONS = "/versions/"
_MODEL_KEYS = ("name", "version")
_ABSENT: Any = object()


@dataclass(frozen=True)
class Served:
    """One model of the repository, ready to answer: its predictor and its /v2 routes."""

    entry: ModelEntry
    model: LoadedModel
    predictor: Predictor
    v2: V2Routes


class RepositoryRoutes:
    """WSGI app: the model routes of a repository here, everything else to ``other``."""

    def __init__(
        self,
        other: WsgiApp,
        routing: Routing,
        served: dict[str, Served],
        max_body_bytes: int,
        max_body_size: str,
        log: logging.Logger,
        metrics: ModelMetrics | None,
        shadows: ShadowRunner,
    ) -> None:
        self.other = other
        self.routing = routing
        self.served = served
        self.max_body_bytes = max_body_bytes
        self.max_body_size = max_body_size
        self.log = log
        self.metrics = metrics
        self.shadows = shadows
        self.any = next(iter(served.values()))  # parses envelopes; answers /v2 server paths
        self._index = orjson.dumps({"models": routing.index()})

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == _PREDICT or path.startswith(_PREFIX):
            return self._predict_route(path, environ, start_response)
        if path == MODELS_PATH:
            return self._index_route(environ, start_response)
        if paths.is_v2(path):
            return self._v2(path, environ, start_response)
        return self.other(environ, start_response)

    # ------------------------------------------------------------ POST /predict ----
    def _predict_route(
        self, path: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        try:
            named = self._path_model(path)
            if environ.get("REQUEST_METHOD") != "POST":
                return self._not_allowed(environ, start_response, "POST")
            body = self._body(environ)
            return self._predict(body, named, environ, start_response)
        except Exception as exc:  # PredictFailed, a CatwalkError, or catwalk's own bug
            code, extra, answer = error_answer(exc, environ, self.log)
            headers = [("Content-Type", JSON), ("Content-Length", str(len(answer)))]
            start_response(status_line(code), headers + list(extra.items()))
            return [answer]

    def _path_model(self, path: str) -> tuple[str | None, str | None] | None:
        """``(name, version)`` a ``/models/...`` path names; None for ``/predict``."""
        if path == _PREDICT:
            return None
        rest = path[len(_PREFIX) :]
        if rest.endswith(_PREDICT):
            rest = rest[: -len(_PREDICT)]
            name, found, version = rest.rpartition(_VERSIONS)
            if not found:
                name, version = rest, ""
            if name and (version or not found):
                return name, version or None
        raise CatwalkError(
            f"no such endpoint: {path[:200]} (endpoints: {', '.join(messages.ROUTES)}, "
            "GET /models, POST /models/{name}/predict, "
            "POST /models/{name}/versions/{version}/predict)",
            status=404,
        )

    def _predict(
        self,
        body: bytes,
        named: tuple[str | None, str | None] | None,
        environ: dict[str, Any],
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        envelope, correlation_id = self.any.predictor.parse(
            body, default_correlation_id(environ), environ.get(IN_FLIGHT_KEY)
        )
        try:
            name, version = self._body_model(envelope.get("model", _ABSENT), named)
            entry = self.routing.pick(name, version, correlation_id)
        except CatwalkError as exc:
            raise PredictFailed(exc, correlation_id) from exc
        served = self.served[entry.ref]
        environ[MODEL_KEY] = (entry.name, entry.version)
        predictor = served.predictor
        status = "200 OK"
        try:
            batcher = predictor.batcher
            if batcher is not None:
                with batcher.arriving():
                    answer = predictor.answer(envelope, correlation_id)
            else:
                answer = predictor.answer(envelope, correlation_id)
        except PredictFailed as exc:
            code, extra, answer = error_answer(exc, environ, self.log)
            status = status_line(code)
            headers = [("Content-Type", JSON), ("Content-Length", str(len(answer)))]
            headers += [*extra.items(), (MODEL_HEADER, entry.ref)]
        else:
            environ[CORRELATION_ID_KEY] = correlation_id
            headers = [
                ("Content-Type", JSON),
                ("Content-Length", str(len(answer))),
                (MODEL_HEADER, entry.ref),
            ]
            shadow = self.routing.shadow_of(entry)
            if shadow is not None:
                model = self.served[shadow.ref].model
                self.shadows.submit(ShadowJob(model, entry.ref, answer, correlation_id))
        if self.metrics is not None:
            self.metrics.observe_request(entry.name, entry.version, status[:3])
        start_response(status, headers)
        return [answer]

    @staticmethod
    def _body_model(
        ref: Any, named: tuple[str | None, str | None] | None
    ) -> tuple[str | None, str | None]:
        """The name and version the request names (the path's, else the body's)."""
        body: tuple[str | None, str | None] = (None, None)
        if ref is not _ABSENT:
            if type(ref) is not dict:
                raise InvalidRequest(
                    f"model: must be an object with name (and version), got {kind(ref)}"
                )
            for key in ref:
                if key not in _MODEL_KEYS:
                    raise InvalidRequest(f"model.{key}: unknown field (allowed: name, version)")
            if "name" not in ref:
                raise InvalidRequest("model.name: required field missing")
            for key in _MODEL_KEYS:
                if key in ref and type(ref[key]) is not str:
                    raise InvalidRequest(f"model.{key}: must be a string, got {kind(ref[key])}")
            body = (ref["name"], ref.get("version"))
        if named is None:
            return body
        if ref is not _ABSENT and (
            body[0] != named[0] or (body[1] is not None and body[1] != named[1])
        ):
            said = " ".join(part for part in body if part is not None)
            path = " ".join(part for part in named if part is not None)
            raise InvalidRequest(
                f"model: the body names {said[:200]}, the path {path[:200]}: name one model"
            )
        return named

    def _body(self, environ: dict[str, Any]) -> bytes:
        length = environ.get("CONTENT_LENGTH") or ""
        stream = environ["wsgi.input"]
        if length.isdigit():
            if int(length) > self.max_body_bytes:
                raise CatwalkError(messages.too_large(self.max_body_size), status=413)
            body: bytes = stream.read(int(length))
            return body
        if environ.get("wsgi.input_terminated"):
            body = stream.read(self.max_body_bytes + 1)
            if len(body) > self.max_body_bytes:
                raise CatwalkError(messages.too_large(self.max_body_size), status=413)
            return body
        raise CatwalkError("body: a request body with Content-Length is required", status=411)

    # --------------------------------------------------------------- GET /models ----
    def _index_route(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self._not_allowed(environ, start_response, "GET")
        environ[CORRELATION_ID_KEY] = default_correlation_id(environ) or new_correlation_id()
        start_response(
            "200 OK", [("Content-Type", JSON), ("Content-Length", str(len(self._index)))]
        )
        return [self._index]

    def _not_allowed(
        self, environ: dict[str, Any], start_response: StartResponse, allowed: str
    ) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD"))[:16]
        path = str(environ.get("PATH_INFO"))[:200]
        error = CatwalkError(
            f"method not allowed: {method} {path} (allowed: {allowed})", status=405
        )
        code, extra, answer = error_answer(error, environ, self.log)
        headers = [("Content-Type", JSON), ("Content-Length", str(len(answer))), ("Allow", allowed)]
        start_response(status_line(code), headers + list(extra.items()))
        return [answer]

    # ------------------------------------------------------------------- /v2 ... ----
    def _v2(
        self, path: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        found = paths.route(path)
        if found is None or found.name is None:
            return self.any.v2(environ, start_response)  # server paths, or its own 404
        name, version = found.name, found.version
        entry: ModelEntry | None
        if version is None and found.operation == paths.INFER:
            key = default_correlation_id(environ) or new_correlation_id()
            try:
                entry = self.routing.pick(name, None, key)
            except CatwalkError as exc:
                return self._v2_error(exc, environ, start_response)
        elif version is None:
            entry = self.routing.defaults.get(name)
        else:
            entry = self.routing.repository.find(name, version)
        if entry is None:
            error = CatwalkError(self.routing.not_found(name, version), status=404)
            return self._v2_error(error, environ, start_response)
        environ[MODEL_KEY] = (entry.name, entry.version)
        metrics = self.metrics

        def answered(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            headers.append((MODEL_HEADER, entry.ref))
            if metrics is not None:
                metrics.observe_request(entry.name, entry.version, status[:3])
            return start_response(status, headers, exc_info)

        return self.served[entry.ref].v2(environ, answered)

    def _v2_error(
        self, error: CatwalkError, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        error_answer(error, environ, self.log)  # sets the correlation id, logs a 5xx
        body = orjson.dumps({"error": error.message})
        start_response(
            status_line(error.status),
            [("Content-Type", JSON), ("Content-Length", str(len(body)))],
        )
        return [body]
