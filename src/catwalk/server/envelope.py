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
``server.limits.max_depth`` is refused before it is parsed (:mod:`catwalk.server.body_limits`).

Numbers: orjson parses and writes the common case. An integer beyond 64 bits would come out
of orjson as a float, so a body holding a run of 19 or more digits is parsed again with the
standard library's json (exact integers) - only when orjson accepts the body with those runs
cut short, so both parsers accept one language - and a response orjson cannot write (it refuses
integers beyond 64 bits) is written with the standard library's json.

Failures raise :class:`PredictFailed`, which carries the request's correlation id next to the
:class:`~catwalk.errors.CatwalkError`; the app's one error handler turns it into a response.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from typing import Any

import orjson

from catwalk.config import DEFAULT_MAX_DEPTH
from catwalk.errors import CatwalkError, InvalidRequest, ModelError, ModelMismatch, OutputError
from catwalk.model import LoadedModel
from catwalk.server.batching import Batcher
from catwalk.server.body_limits import too_deep
from catwalk.server.logs import InFlight
from catwalk.server.model_errors import for_client

ENVELOPE_FIELDS = ("correlation_id", "model", "input", "extra_data")
_ENVELOPE_KEYS = frozenset(ENVELOPE_FIELDS)
_MODEL_KEYS = ("name", "version")
_ABSENT: Any = object()
MAX_CORRELATION_ID = 256
# C0 controls, DEL and C1 controls: a correlation id is logged and must stay on its line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# Every digit becomes "9", everything else a space: a run of 19 "9"s then means a number
# orjson may not parse exactly (beyond 64 bits it gives a float). bytes.translate + `in` is
# about twice as fast as a regex search; counting the digits first (translate deleting the
# others) is cheaper still and rules out most bodies, which hold fewer than 19 digits.
_DIGITS = bytes(0x39 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_NOT_DIGITS = bytes(i for i in range(256) if not 0x30 <= i <= 0x39)
_LONG_NUMBER = b"9" * 19
_DIGIT_RUN = re.compile(rb"([0-9]{18})[0-9]+")


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


def loads(body: bytes) -> Any:
    """Parse a request body; integers of any size stay exact. Raises InvalidRequest."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson refuses integers beyond a double's range: only the exact path can say.
        if not _long_number(body):
            raise InvalidRequest(f"body: not valid JSON ({exc})") from None
        _only_long_numbers(body)
        return _exact_loads(body)
    if _long_number(body):
        return _exact_loads(body)
    return value


def _only_long_numbers(body: bytes) -> None:
    """Raise InvalidRequest unless orjson rejected ``body`` only for its long numbers.

    The standard library's parser accepts more than orjson (lone surrogates such as
    ``"\\ud800"``, which no UTF-8 response can carry; UTF-16 bodies; nesting beyond 1,024):
    the body with every run of digits cut to 18 must pass orjson too, so that both parsers
    accept one language. Cutting a run keeps every ``\\uXXXX`` escape and every number's
    validity, and changes nothing else.
    """
    try:
        orjson.loads(_DIGIT_RUN.sub(rb"\1", body))
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"body: not valid JSON ({exc})") from None


def _long_number(body: bytes) -> bool:
    """True when the body holds a run of 19 or more digits (maybe an integer beyond 64 bits)."""
    return _LONG_NUMBER in body.translate(_DIGITS)


def _exact_loads(body: bytes) -> Any:
    """The slow path: the standard library's parser, as strict as orjson."""
    try:
        return json.loads(body, parse_constant=_no_constant, parse_float=_finite_float)
    except ValueError as exc:  # also e.g. an integer of more than 4300 digits
        raise InvalidRequest(f"body: not valid JSON ({exc})") from None
    except RecursionError:  # orjson takes 1,024 levels, this parser fewer (loads() callers
        # without the server's depth limit, such as `catwalk predict`)
        raise InvalidRequest("body: nested too deeply to be parsed exactly") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"number {text[:20]}... is out of range")
    return value


def dumps(value: Any) -> bytes:
    """JSON bytes of a JSON value; integers beyond 64 bits are written exactly, too.

    Raises TypeError or ValueError when the value cannot be written as JSON at all.
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")


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


def correlation_id_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a client's correlation id (None when it can)."""
    if type(value) is not str or not value:
        return f"correlation_id: must be a non-empty string, got {kind(value)}"
    if len(value) > MAX_CORRELATION_ID:
        return f"correlation_id: must be at most {MAX_CORRELATION_ID} characters, got {len(value)}"
    if not value.isprintable():
        found = _CONTROL.search(value)
        if found is not None:
            return (
                f"correlation_id: must not contain control characters, found "
                f"{found.group().encode('unicode_escape').decode('ascii')} at position "
                f"{found.start()}"
            )
    return None


class Predictor:
    """Answers ``POST /predict`` bodies for one loaded model.

    Everything that does not depend on the request (the model reference, the flags) is
    computed once here; :meth:`handle` is the hot path.
    """

    __slots__ = (
        "_predict",
        "batcher",
        "check_model",
        "max_depth",
        "model",
        "model_ref",
        "validate_output",
    )

    def __init__(
        self,
        model: LoadedModel,
        *,
        validate_output: bool = True,
        batcher: Batcher | None = None,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.model = model
        self.model_ref = {"name": model.spec.name, "version": model.spec.version}
        self.validate_output = validate_output
        self.max_depth = max_depth
        # With batching, the model call (only it) goes through the worker's collector; the
        # request is parsed, validated and answered in its own thread either way.
        self.batcher = batcher
        self._predict = batcher.submit if batcher is not None else model.predict
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
            if len(body.translate(None, _NOT_DIGITS)) >= 19 and _long_number(body):
                envelope = _exact_loads(body)
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

        problems = self.model.input_errors(data)
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
            output = self._predict(data)
        except ModelError as exc:  # the client's message: short, naming a null that caused it
            raise for_client(exc, data) from exc
        if self.validate_output:
            problems = self.model.output_errors(output)
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
