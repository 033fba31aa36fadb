"""The Open Inference Protocol's REST endpoints (``/v2/...``) beside ``POST /predict``.

Like :class:`~catwalk.server.predict_route.PredictRoute`, :class:`V2Routes` is plain WSGI,
answered before Flask's request machinery, and sits inside catwalk's operational pieces: the
request log, metrics (each operation its own ``endpoint`` label, :mod:`catwalk.protocol.paths`),
bearer auth (``/v2/health/*`` open like ``/status`` and ``/ready``) and drain see it as they
see ``/predict``. Everything not under ``/v2`` goes on to ``other``.

An infer request is decoded by :mod:`catwalk.protocol.request` into N records; the records
are checked against ``schema.input`` by the model's own validator (``input[3].sigma: ...``),
the model is called through its io type — each record of an object-input model joining the
batching collector like a ``/predict`` request, an array-input or DataFrame model getting the
N records as its one batch — the outputs are checked against ``schema.output`` and encoded by
:mod:`catwalk.protocol.response`. Errors are the protocol's ``{"error": "..."}`` with the
status ``/predict`` would give (400, 404, 413, 500, 504); 5xx are logged as for ``/predict``.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from typing import Any

import orjson

from catwalk import __version__
from catwalk.config import ServerSettings
from catwalk.correlation import new_correlation_id
from catwalk.errors import CatwalkError, InvalidRequest, ModelMismatch, OutputError
from catwalk.json_codec import kind
from catwalk.model import describe
from catwalk.protocol import paths
from catwalk.protocol.request import Decoder
from catwalk.protocol.response import encode
from catwalk.protocol.tensors import model_sides
from catwalk.server import messages
from catwalk.server.envelope import PredictFailed, Predictor
from catwalk.server.environ import (
    CORRELATION_ID_KEY,
    IN_FLIGHT_KEY,
    StartResponse,
    WsgiApp,
    default_correlation_id,
)
from catwalk.server.failures import error_answer, status_line
from catwalk.server.ops.readiness import Readiness

JSON = "application/json"
BINARY = "application/octet-stream"
HEADER_LENGTH = "Inference-Header-Content-Length"
EXTENSIONS = ("binary_tensor_data",)
PLATFORM = "catwalk_python"
_READ = ("GET", "HEAD")
_ENCODINGS = {"gzip": 31, "deflate": 15}  # zlib's wbits: gzip wrapper, zlib wrapper


def model_metadata(predictor: Predictor) -> dict[str, Any]:
    """The model metadata response: the tensors of model.yml (docs/protocol.md)."""
    spec = predictor.model.spec
    inputs, outputs, _ = model_sides(spec)
    return {
        "name": spec.name,
        "versions": [spec.version],
        "platform": PLATFORM,
        "inputs": inputs.metadata(),
        "outputs": outputs.metadata(),
    }


def server_metadata() -> dict[str, Any]:
    return {"name": "catwalk", "version": __version__, "extensions": list(EXTENSIONS)}


class V2Routes:
    """WSGI app: the ``/v2`` endpoints here, everything else to ``other``."""

    def __init__(
        self,
        other: WsgiApp,
        predictor: Predictor,
        settings: ServerSettings,
        log: logging.Logger,
        readiness: Readiness,
    ) -> None:
        self.other = other
        self.predictor = predictor
        self.readiness = readiness  # the app's: /v2/health/ready answers as /ready does
        self.model = predictor.model
        self.predict = predictor.predict  # the model's call (timed when metrics are on)
        self.spec = predictor.model.spec
        self.batcher = predictor.batcher
        self.validate_output = predictor.validate_output
        self.max_body_bytes = settings.max_body_bytes
        self.max_body_size = settings.max_body_size
        self.log = log
        inputs, outputs, self.whole = model_sides(self.spec)
        self.outputs = outputs
        self.decoder = Decoder(inputs, outputs, max_depth=settings.max_depth)
        self._served = f"{self.spec.name} version {self.spec.version}"
        self._routes: dict[str, paths.Route] = {}
        self._bodies = {
            paths.SERVER: orjson.dumps(server_metadata()),
            paths.MODEL_METADATA: orjson.dumps(model_metadata(predictor)),
            paths.LIVE: orjson.dumps({"live": True}),
        }

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        found = self._routes.get(path)
        if found is None and not paths.is_v2(path):
            return self.other(environ, start_response)
        try:
            hot = found is not None and found.operation == paths.INFER
            if hot and environ.get("REQUEST_METHOD") == "POST":
                return self._infer(environ, start_response)
            return self._answer(path, environ, start_response)
        except Exception as exc:  # PredictFailed, a CatwalkError, or catwalk's own bug
            return self._fail(exc, environ, start_response)

    def _answer(
        self, path: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        found = self._routes.get(path)
        if found is None:
            found = paths.route(path)
            if found is None:
                raise CatwalkError(
                    f"no such endpoint: {method[:16]} {path[:200]} (endpoints: "
                    f"{', '.join(messages.ROUTES)}, and the Open Inference Protocol's under /v2)",
                    status=404,
                )
            if found.name is not None:
                self._check_model(found.name, found.version)  # another model: 404
                if len(self._routes) < 16:
                    self._routes[path] = found  # this model's paths only: a bounded cache
        operation = found.operation
        allowed = ("POST",) if operation == paths.INFER else _READ
        if method not in allowed:
            return self._not_allowed(environ, start_response, method, path, allowed)
        if operation == paths.INFER:
            return self._infer(environ, start_response)
        if operation in (paths.READY, paths.MODEL_READY):
            problem = self.readiness.problem()
            answer: dict[str, Any] = {"ready": problem is None}
            if operation == paths.MODEL_READY:
                answer = {"name": self.spec.name, **answer}
            if problem is None:
                return _send(start_response, "200 OK", orjson.dumps(answer))
            answer["error"] = problem
            return _send(start_response, status_line(503), orjson.dumps(answer))
        return _send(start_response, "200 OK", self._bodies[operation])

    def _check_model(self, name: str, version: str | None) -> None:
        if name != self.spec.name or (version is not None and version != self.spec.version):
            asked = name if version is None else f"{name} version {version}"
            raise ModelMismatch(
                f"model {asked[:200]!r} not found: this server serves {self._served}"
            )

    def _infer(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = self._body(environ)
        header_length = environ.get("HTTP_INFERENCE_HEADER_CONTENT_LENGTH")
        batcher = self.batcher
        if batcher is not None:
            with batcher.arriving():
                correlation_id, answer, json_length = self._run(body, header_length, environ)
        else:
            correlation_id, answer, json_length = self._run(body, header_length, environ)
        environ[CORRELATION_ID_KEY] = correlation_id
        headers = [("Content-Length", str(len(answer)))]
        if json_length is None:
            headers.append(("Content-Type", JSON))
        else:
            headers += [("Content-Type", BINARY), (HEADER_LENGTH, str(json_length))]
        start_response("200 OK", headers)
        return [answer]

    def _run(
        self, body: bytes, header_length: str | None, environ: dict[str, Any]
    ) -> tuple[str, bytes, int | None]:
        try:
            request = self.decoder.decode(body, header_length)
        except CatwalkError as exc:
            cid = default_correlation_id(environ) or new_correlation_id()
            raise PredictFailed(exc, cid) from exc
        correlation_id = request.id or default_correlation_id(environ) or new_correlation_id()
        in_flight = environ.get(IN_FLIGHT_KEY)  # the request log's: timeout hooks name it
        if in_flight is not None:
            in_flight.body_id = correlation_id
        try:
            if request.model_name is not None or request.model_version is not None:
                self._check_model(request.model_name or self.spec.name, request.model_version)
            records = self._predict(request.records)
            head = {
                "model_name": self.spec.name,
                "model_version": self.spec.version,
                "id": correlation_id,
            }
            answer, json_length = encode(head, records, request.outputs, self.outputs.fields)
        except CatwalkError as exc:
            raise PredictFailed(exc, correlation_id) from exc
        return correlation_id, answer, json_length

    def _predict(self, records: list[Any]) -> list[Any]:
        """Validate the records, run the model, validate and return the output records."""
        model = self.model
        batcher = self.batcher
        if self.whole:  # an array-input or DataFrame model: the N records are one input
            problems = model.input_errors(records)
            if problems:
                raise InvalidRequest("; ".join(problems))
            output = batcher.submit(records) if batcher is not None else self.predict(records)
            if self.validate_output:
                problems = model.output_errors(output)
                if problems:
                    raise OutputError("; ".join(problems))
            if not self.outputs_listed:
                return [output]
            if type(output) is not list:
                raise OutputError(f"output: must be an array of records, got {kind(output)}")
            return output
        if len(records) == 1:  # the common case: one record, one validator call
            problems = self.spec.input.errors(records[0], "input[0]")
        else:
            problems = self.spec.input.rows_errors(records, "input")
        if problems:
            raise InvalidRequest("; ".join(problems))
        if batcher is not None:
            outputs = batcher.submit_many(records)
            for output in outputs:
                if isinstance(output, CatwalkError):
                    raise output
        else:
            outputs = [self.predict(record) for record in records]
        if self.validate_output:
            if len(outputs) == 1:
                problems = self.spec.output.errors(outputs[0], "output[0]")
            else:
                problems = self.spec.output.rows_errors(outputs, "output")
            if problems:
                raise OutputError("; ".join(problems))
        return outputs

    @property
    def outputs_listed(self) -> bool:
        """Whole-input models: the output is a list of records (else one record)."""
        return self.spec.output.is_batch or self.model.is_dataframe

    def _body(self, environ: dict[str, Any]) -> bytes:
        """The request body, decompressed when Content-Encoding says so; bounded either way."""
        limit = self.max_body_bytes
        length = environ.get("CONTENT_LENGTH") or ""
        stream = environ["wsgi.input"]
        if length.isdigit():
            if int(length) > limit:
                raise CatwalkError(messages.too_large(self.max_body_size), status=413)
            body: bytes = stream.read(int(length))
        elif environ.get("wsgi.input_terminated"):
            body = stream.read(limit + 1)
        else:
            body = b""
        if len(body) > limit:
            raise CatwalkError(messages.too_large(self.max_body_size), status=413)
        encoding = environ.get("HTTP_CONTENT_ENCODING")
        if encoding is None:
            return body
        encoding = encoding.strip().lower()
        if encoding == "identity":
            return body
        wbits = _ENCODINGS.get(encoding)
        if wbits is None:
            raise CatwalkError(
                f"Content-Encoding: {encoding[:40]!r} is not supported (gzip, deflate, identity)",
                status=415,
            )
        inflate = zlib.decompressobj(wbits)
        try:
            plain = inflate.decompress(body, limit + 1)
        except zlib.error as exc:
            raise InvalidRequest(f"body: not valid {encoding} data ({exc})") from None
        if len(plain) > limit or inflate.unconsumed_tail:
            raise CatwalkError(
                messages.too_large(self.max_body_size) + " (decompressed)", status=413
            )
        return plain

    def _fail(
        self, exc: Exception, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        status, _, _ = error_answer(exc, environ, self.log)  # logs 5xx; sets the id
        error = exc.error if isinstance(exc, PredictFailed) else exc
        if isinstance(error, CatwalkError):
            message = error.message
        else:
            message = f"internal server error: {describe(error)}"
        return _send(start_response, status_line(status), orjson.dumps({"error": message}))

    @staticmethod
    def _not_allowed(
        environ: dict[str, Any],
        start_response: StartResponse,
        method: str,
        path: str,
        allowed: tuple[str, ...],
    ) -> Iterable[bytes]:
        environ[CORRELATION_ID_KEY] = default_correlation_id(environ) or new_correlation_id()
        shown = "GET" if allowed == _READ else "POST"
        body = orjson.dumps(
            {"error": f"method not allowed: {method[:16]} {path[:200]} (allowed: {shown})"}
        )
        start_response(
            status_line(405),
            [
                ("Content-Type", JSON),
                ("Content-Length", str(len(body))),
                ("Allow", ", ".join(allowed)),
            ],
        )
        return [body]


def _send(start_response: StartResponse, status: str, body: bytes) -> Iterable[bytes]:
    start_response(status, [("Content-Type", JSON), ("Content-Length", str(len(body)))])
    return [body]
