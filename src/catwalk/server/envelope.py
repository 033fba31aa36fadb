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
- ``extra_data`` must be an object and is echoed untouched.

Failures raise :class:`PredictFailed`, which carries the request's correlation id next to the
:class:`~catwalk.errors.CatwalkError`; the app's one error handler turns it into a response.
"""

from __future__ import annotations

import os
import random
from typing import Any

import orjson

from catwalk.errors import CatwalkError, InvalidRequest, ModelMismatch, OutputError
from catwalk.model import LoadedModel

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


# Correlation ids are for tracing, not secrets: a private Mersenne Twister seeded from the OS
# is unique enough and ten times cheaper than uuid.uuid4(), which reads os.urandom every call.
# Private, so a model seeding the global `random` (the RNG example does) cannot repeat our ids;
# reseeded after fork, so gunicorn workers forked from one master do not share a sequence.
_ids = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.seed)
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_correlation_id() -> str:
    """A random version-4 UUID string (``6f1c2a9e-…``)."""
    h = "%032x" % ((_ids.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def error_body(correlation_id: str | None, message: str) -> bytes:
    """The JSON body of every error response."""
    return orjson.dumps({"correlation_id": correlation_id, "output": {"message": message}})


def kind(value: Any) -> str:
    """A JSON value's type in JSON's words, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return "number"


class Predictor:
    """Answers ``POST /predict`` bodies for one loaded model.

    Everything that does not depend on the request (the model reference, the flags) is
    computed once here; :meth:`handle` is the hot path.
    """

    __slots__ = ("model", "model_ref", "validate_output")

    def __init__(self, model: LoadedModel, *, validate_output: bool = True) -> None:
        self.model = model
        self.model_ref = {"name": model.spec.name, "version": model.spec.version}
        self.validate_output = validate_output

    def handle(self, body: bytes) -> tuple[str, bytes]:
        """Return ``(correlation_id, response body)``, or raise PredictFailed."""
        try:
            envelope = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            error = InvalidRequest(f"body: not valid JSON ({exc})")
            raise PredictFailed(error, new_correlation_id()) from None
        if type(envelope) is not dict:
            error = InvalidRequest(
                f"body: must be a JSON object (the request envelope), got {kind(envelope)}"
            )
            raise PredictFailed(error, new_correlation_id())
        correlation_id = envelope.get("correlation_id", _ABSENT)
        if correlation_id is _ABSENT:
            correlation_id = new_correlation_id()
        elif type(correlation_id) is not str or not correlation_id:
            error = InvalidRequest(
                f"correlation_id: must be a non-empty string, got {kind(correlation_id)}"
            )
            raise PredictFailed(error, new_correlation_id())
        try:
            return correlation_id, self._answer(envelope, correlation_id)
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
        if ref is not _ABSENT and ref != self.model_ref:
            self._check_model(ref)
        extra = envelope.get("extra_data", _ABSENT)
        if extra is not _ABSENT and type(extra) is not dict:
            raise InvalidRequest(f"extra_data: must be an object, got {kind(extra)}")

        problems = self.model.input_errors(data)
        if problems:
            raise InvalidRequest("; ".join(problems))
        output = self.model.predict(data)
        if self.validate_output:
            problems = self.model.output_errors(output)
            if problems:
                raise OutputError("; ".join(problems))

        response = {"correlation_id": correlation_id, "model": self.model_ref, "input": data}
        if extra is not _ABSENT:
            response["extra_data"] = extra
        response["output"] = output
        try:
            return orjson.dumps(response)
        except orjson.JSONEncodeError as exc:
            # to_json accepted it, but orjson cannot write it (an integer beyond 64 bits).
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
