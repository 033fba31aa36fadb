"""The ``POST /predict`` envelope: request body in, response body out. No HTTP framework here.

A request body is ``{"correlation_id"?, "model"?, "input", "extra_data"?}``; the response is
that envelope with ``correlation_id`` generated when absent, ``model`` filled in, and
``output`` added. :class:`Predictor` does everything between the raw bytes and the bytes
sent back, so catwalk's own per-request cost can be measured in process (``bench/``)
without a server, and Flask only routes.

Rules (documented in docs/serving.md):
- optional fields may be left out; when present they must have their type (``null`` is
  not accepted for any of them), and unknown top-level fields are rejected, because a typo
  (``extradata``) would otherwise be dropped silently;
- ``model``, when given, must be ``{"name": str, "version": str}``; a different name or
  version is 404 (this server does not serve that model);
- ``extra_data`` must be an object and is echoed untouched;
- ``correlation_id``, when given, is a non-empty string of at most 256 characters without
  control characters (it is logged);
- the echoed ``input`` is what the client sent, whatever the model does to its argument.

Limits (docs/serving.md, "Request body limits"): a body nested deeper than
``server.limits.max_depth`` is refused before it is parsed (:mod:`catwalk.body_limits`).

Numbers: integers of any size stay exact (:mod:`catwalk.json_codec`, the codec ``catwalk
predict`` and the Open Inference Protocol share).

Failures raise :class:`PredictFailed`, which carries the request's correlation id next to the
:class:`~catwalk.errors.CatwalkError`; the app's one error handler turns it into a response.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

from catwalk.body_limits import too_deep
from catwalk.config import DEFAULT_MAX_DEPTH
from catwalk.correlation import correlation_id_problem, new_correlation_id
from catwalk.errors import CatwalkError, InvalidRequest, ModelError, ModelMismatch, OutputError
from catwalk.json_codec import dumps, exact_loads, kind, loads, long_number
from catwalk.model import LoadedModel
from catwalk.server.batching import Batcher
from catwalk.server.model_errors import for_client
from catwalk.server.ops.request_log import InFlight

ENVELOPE_FIELDS = ("correlation_id", "model", "input", "extra_data")
_ENVELOPE_KEYS = frozenset(ENVELOPE_FIELDS)
_MODEL_KEYS = ("name", "version")
_ABSENT: Any = object()


class PredictFailed(Exception):
    """A catwalk error raised while answering one request, with that request's correlation id."""

    def __init__(self, error: CatwalkError, correlation_id: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.correlation_id = correlation_id


class Predictor:
    """Answers ``POST /predict`` bodies for one loaded model.

    Everything that does not depend on the request (the model reference, the flags) is
    computed once here; :meth:`handle` is the hot path.
    """

    __slots__ = (
        "batcher",
        "call_model",
        "check_input",
        "check_model",
        "check_output",
        "max_depth",
        "model",
        "model_ref",
        "predict",
        "validate_output",
    )

    def __init__(
        self,
        model: LoadedModel,
        *,
        validate_output: bool = True,
        batcher: Batcher | None = None,
        max_depth: int = DEFAULT_MAX_DEPTH,
        predict: Callable[[Any], Any] | None = None,
    ) -> None:
        self.model = model
        self.model_ref = {"name": model.spec.name, "version": model.spec.version}
        self.validate_output = validate_output
        self.max_depth = max_depth
        # The model's call on one input (``model.predict``, timed when the app keeps metrics):
        # the Open Inference Protocol's routes call it too.
        self.predict: Callable[[Any], Any] = predict or model.predict
        # With batching, the model call (only it) goes through the worker's collector; the
        # request is parsed, validated and answered in its own thread either way.
        self.batcher = batcher
        # The three steps of a request around which catwalk.tracing puts its spans.
        self.check_input = model.input_errors
        self.call_model = batcher.submit if batcher is not None else self.predict
        self.check_output = model.output_errors
        # False in a model repository, whose router checked the body's model already.
        self.check_model = True

    def handle(
        self, body: bytes, request_id: str | None = None, in_flight: InFlight | None = None
    ) -> tuple[str, bytes]:
        """Return ``(correlation_id, response body)``, or raise PredictFailed.

        ``request_id`` (nginx's id of the request, production mode) is the correlation id
        when the body brings none; otherwise one is generated. ``in_flight`` (the request's,
        from the request log) learns the body's id before the model runs.
        """
        if self.batcher is not None:
            with self.batcher.arriving():
                return self._handle(body, request_id, in_flight)
        return self._handle(body, request_id, in_flight)

    def _handle(
        self, body: bytes, request_id: str | None, in_flight: InFlight | None
    ) -> tuple[str, bytes]:
        envelope, correlation_id = self.parse(body, request_id, in_flight)
        return correlation_id, self.answer(envelope, correlation_id)

    def parse(
        self, body: bytes, request_id: str | None, in_flight: InFlight | None
    ) -> tuple[dict[str, Any], str]:
        """The body's envelope (a JSON object) and the request's correlation id; raises
        PredictFailed. A model repository parses here, then picks the model that answers."""
        if too_deep(body, self.max_depth):  # before any parser: both recurse
            error = InvalidRequest(
                f"body: nested more than {self.max_depth} levels deep (the limit, "
                "server.limits.max_depth)"
            )
            raise PredictFailed(error, request_id or new_correlation_id())
        try:
            envelope = orjson.loads(body)  # loads(body), with its fast path inlined
            if long_number(body):
                envelope = exact_loads(body)
        except (orjson.JSONDecodeError, InvalidRequest):
            try:
                envelope = loads(body)
            except InvalidRequest as exc:
                raise PredictFailed(exc, request_id or new_correlation_id()) from None
        if type(envelope) is not dict:
            error = InvalidRequest(
                f"body: must be a JSON object (the request envelope), got {kind(envelope)}"
            )
            raise PredictFailed(error, request_id or new_correlation_id())
        correlation_id = envelope.get("correlation_id", _ABSENT)
        if correlation_id is _ABSENT:
            correlation_id = request_id or new_correlation_id()
        else:
            problem = correlation_id_problem(correlation_id)
            if problem is not None:
                raise PredictFailed(InvalidRequest(problem), request_id or new_correlation_id())
        if in_flight is not None:
            in_flight.body_id = correlation_id
        return envelope, correlation_id

    def answer(self, envelope: dict[str, Any], correlation_id: str) -> bytes:
        """The response body for a parsed envelope; raises PredictFailed."""
        try:
            return self._answer(envelope, correlation_id)
        except CatwalkError as exc:
            raise PredictFailed(exc, correlation_id) from exc

    def _answer(self, envelope: dict[str, Any], correlation_id: str) -> bytes:
        if not _ENVELOPE_KEYS.issuperset(envelope):
            unknown = sorted(k for k in envelope if k not in _ENVELOPE_KEYS)
            raise InvalidRequest(
                f"{unknown[0]}: unknown field (allowed: {', '.join(ENVELOPE_FIELDS)})"
            )
        data = envelope.get("input", _ABSENT)
        if data is _ABSENT:
            raise InvalidRequest("input: required field missing")
        ref = envelope.get("model", _ABSENT)
        if ref is not _ABSENT and ref != self.model_ref and self.check_model:
            self._check_model(ref)
        extra = envelope.get("extra_data", _ABSENT)
        if extra is not _ABSENT and type(extra) is not dict:
            raise InvalidRequest(f"extra_data: must be an object, got {kind(extra)}")

        problems = self.check_input(data)
        if problems:
            raise InvalidRequest("; ".join(problems))
        # The input is written now, before the model can change it in place (X.pop(...)):
        # the echo is what was sent, for less than a deep copy would cost. (The model never
        # sees extra_data.)
        try:
            sent = orjson.dumps(data)
        except orjson.JSONEncodeError:
            sent = dumps(data)  # integers beyond 64 bits, from the exact path
        try:
            output = self.call_model(data)
        except ModelError as exc:  # the client's message: short, naming a null that caused it
            raise for_client(exc, data) from exc
        if self.validate_output:
            problems = self.check_output(output)
            if problems:
                raise OutputError("; ".join(problems))

        response = {
            "correlation_id": correlation_id,
            "model": self.model_ref,
            "input": orjson.Fragment(sent),
        }
        if extra is not _ABSENT:
            response["extra_data"] = extra
        response["output"] = output
        try:
            return orjson.dumps(response)
        except orjson.JSONEncodeError:
            pass
        # Integers beyond 64 bits, in extra_data or the output: the standard library's json,
        # which knows no Fragment (the input is read back from its own exact bytes).
        response["input"] = json.loads(sent)
        try:
            return dumps(response)
        except (TypeError, ValueError) as exc:
            raise OutputError(f"output: cannot be written as JSON ({exc})") from None

    def _check_model(self, ref: Any) -> None:
        """Explain why ``ref`` is not this model: 400 when malformed, 404 when another model."""
        if type(ref) is not dict:
            raise InvalidRequest(f"model: must be an object with name and version, got {kind(ref)}")
        for key in ref:
            if key not in _MODEL_KEYS:
                raise InvalidRequest(f"model.{key}: unknown field (allowed: name, version)")
        for key in _MODEL_KEYS:
            if key not in ref:
                raise InvalidRequest(f"model.{key}: required field missing")
            if type(ref[key]) is not str:
                raise InvalidRequest(f"model.{key}: must be a string, got {kind(ref[key])}")
        served = f"{self.model_ref['name']} {self.model_ref['version']}"
        raise ModelMismatch(
            f"model: this server serves {served}, not {ref['name']} {ref['version']}"
        )
