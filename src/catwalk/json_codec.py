"""JSON in and out, with integers of any size kept exact: the codec of every request body.

``POST /predict``'s envelope (:mod:`catwalk.server.envelope`), the Open Inference Protocol's
requests and responses (:mod:`catwalk.protocol`), ``catwalk predict`` (:mod:`catwalk.scoring`)
and ``catwalk score`` all read and write JSON through here, so that they accept one language.
It sits below all of them: nothing here knows of HTTP or of the server.

orjson parses and writes the common case. An integer beyond 64 bits would come out of orjson
as a float, so a body holding a run of 19 or more digits is parsed again with the standard
library's json (exact integers) - only when orjson accepts the body with those runs cut short,
so both parsers accept one language - and a value orjson cannot write (it refuses integers
beyond 64 bits) is written with the standard library's json.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

from catwalk.errors import InvalidRequest

# Every digit becomes "9", everything else a space: a run of 19 "9"s then means a number
# orjson may not parse exactly (beyond 64 bits it gives a float). bytes.translate + `in` is
# about twice as fast as a regex search; counting the digits first (translate deleting the
# others) is cheaper still and rules out most bodies, which hold fewer than 19 digits.
_DIGITS = bytes(0x39 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_NOT_DIGITS = bytes(i for i in range(256) if not 0x30 <= i <= 0x39)
_LONG_NUMBER = b"9" * 19
_DIGIT_RUN = re.compile(rb"([0-9]{18})[0-9]+")


def loads(body: bytes) -> Any:
    """Parse a request body; integers of any size stay exact. Raises InvalidRequest."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson refuses integers beyond a double's range: only the exact path can say.
        if not long_number(body):
            raise InvalidRequest(f"body: not valid JSON ({exc})") from None
        _only_long_numbers(body)
        return exact_loads(body)
    if long_number(body):
        return exact_loads(body)
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


def long_number(body: bytes) -> bool:
    """True when the body holds a run of 19 or more digits (maybe an integer beyond 64 bits)."""
    return len(body.translate(None, _NOT_DIGITS)) >= 19 and _LONG_NUMBER in body.translate(_DIGITS)


def exact_loads(body: bytes) -> Any:
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
