"""Property-based fuzzing of the request path: envelope parser, schema validator, explainer.

Random JSON (deep, wide, huge numbers, lone surrogates, bytes mutated) and random schemas
built from every OpenAPI keyword catwalk supports. Whatever comes in, the only failures are
catwalk's own client errors (400/404), every answer is writable JSON, and each case is
answered within the deadline of the test profile (tests/conftest.py: deterministic, 2 s).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from catwalk.errors import InvalidRequest, ModelMismatch
from catwalk.explain import MAX_MESSAGE_LEN, MAX_MESSAGES, Explainer, compile_node
from catwalk.json_codec import loads
from catwalk.model import LoadedModel, load_model
from catwalk.schema import SchemaValidator, to_json_schema
from catwalk.server.envelope import PredictFailed, Predictor
from catwalk.server.environ import error_body
from catwalk.spec import load_spec

MODELS = Path(__file__).resolve().parent / "models"
EXAMPLES = Path(__file__).resolve().parents[1] / "example_models"
TIME_LIMIT = 1.0  # seconds per case, well below the profile's deadline

# -- values ----------------------------------------------------------------------------------
surrogates = st.sampled_from(["\ud800", "\udfff", "\ud83d\ude00", "\ud83d", "x\udc00y"])
strings = st.text(max_size=12) | surrogates | st.sampled_from(["a@b.co", "." * 300, "aaaa!"])
numbers = (
    st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**4000, 1e308, 5e-324, -0.0])
)
scalars = st.none() | st.booleans() | numbers | strings


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(strings, inner, max_size=4)


json_values = st.recursive(scalars, containers, max_leaves=40)


@st.composite
def deep(draw: st.DrawFn) -> Any:
    """A value nested up to 1,200 levels (beyond orjson's 1,024 and Python's recursion)."""
    value: Any = draw(scalars)
    for _ in range(draw(st.integers(min_value=0, max_value=1200))):
        value = [value] if draw(st.booleans()) else {"k": value}
    return value


def encode(value: Any, ascii: bool) -> bytes:
    text = json.dumps(value, ensure_ascii=ascii, check_circular=False)
    return text.encode("utf-8", "surrogatepass")  # raw surrogates: invalid UTF-8 on purpose


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    envelope: dict[str, Any] = {"input": draw(json_values | deep())}
    for name in ("correlation_id", "model", "extra_data"):
        if draw(st.booleans()):
            envelope[name] = draw(json_values | deep())
    if draw(st.booleans()):
        envelope[draw(strings)] = draw(json_values)
    try:
        body = encode(envelope, draw(st.booleans()))
    except RecursionError:  # the generator's own json.dumps on the deepest values
        body = b'{"input": ' + b"[" * 1200 + b"]" * 1200 + b"}"
    if draw(st.booleans()):  # a few bytes changed
        data = bytearray(body)
        for _ in range(draw(st.integers(min_value=1, max_value=4))):
            if not data:
                break
            i = draw(st.integers(min_value=0, max_value=len(data) - 1))
            data[i] = draw(st.sampled_from(b'[]{}",:\\0919eE-.u\x00\xff '))
        body = bytes(data)
    return body


_models: dict[str, LoadedModel] = {}


def predictor(name: str) -> Predictor:
    if name not in _models:
        folder = MODELS / name if (MODELS / name).is_dir() else EXAMPLES / name
        _models[name] = load_model(load_spec(folder))
    return Predictor(_models[name])


def check_answer(name: str, body: bytes) -> None:
    started = time.perf_counter()
    try:
        correlation_id, answer = predictor(name).handle(body)
    except PredictFailed as exc:
        # 404 only for a well-formed envelope naming another model; every other refusal is 400.
        expected = 404 if isinstance(exc.error, ModelMismatch) and _names_another(body) else 400
        assert exc.error.status == expected, exc.error
        orjson.loads(error_body(exc.correlation_id, exc.error.message))  # writable JSON
    else:
        assert json.loads(answer)["correlation_id"] == correlation_id
    assert time.perf_counter() - started < TIME_LIMIT


def _names_another(body: bytes) -> bool:
    """The body is a JSON object whose ``model`` is ``{"name": str, "version": str}``."""
    try:
        envelope = loads(body)
    except InvalidRequest:
        return False
    ref = envelope.get("model") if isinstance(envelope, dict) else None
    return (
        isinstance(ref, dict)
        and set(ref) == {"name", "version"}
        and all(type(v) is str for v in ref.values())
    )


@pytest.mark.parametrize("name", ["keywords", "batch", "rng"])
@given(body=bodies())
def test_envelope_never_fails_but_with_a_client_error(name: str, body: bytes) -> None:
    check_answer(name, body)


@given(value=json_values)
def test_valid_envelopes_of_any_value_are_answered(value: Any) -> None:
    envelope = {"input": {"free": {"v": value}}}
    check_answer(
        "keywords", orjson.dumps(envelope) if _orjson_can(value) else encode(envelope, True)
    )


def _orjson_can(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError:
        return False
    return True


# -- schemas ---------------------------------------------------------------------------------
PATTERNS = ["^[a-z]+$", "^(a+)+$", "a|b", "^\\d{3}$", "[0-9]"]
FORMATS = ["email", "date", "date-time", "uuid", "ipv4", "ipv6", "hostname", "uri"]


def scalar_schemas() -> st.SearchStrategy[dict[str, Any]]:
    string = st.fixed_dictionaries(
        {"type": st.just("string")},
        optional={
            "minLength": st.integers(0, 5),
            "maxLength": st.integers(0, 50),
            "pattern": st.sampled_from(PATTERNS),
            "format": st.sampled_from(FORMATS),
            "enum": st.lists(strings, min_size=1, max_size=3),
            "nullable": st.booleans(),
        },
    )
    number = st.fixed_dictionaries(
        {"type": st.sampled_from(["number", "integer"])},
        optional={
            "minimum": numbers,
            "maximum": numbers,
            "multipleOf": st.sampled_from([0.5, 0.1, 3, 1e-9, 7.5, 2**70]),
            "format": st.sampled_from(["int32", "int64", "float", "double"]),
            "enum": st.lists(numbers, min_size=1, max_size=3),
            "nullable": st.booleans(),
        },
    )
    other = st.fixed_dictionaries({"type": st.sampled_from(["boolean", "string", "number"])})
    return string | number | other | st.just({})


def compound(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    array = st.fixed_dictionaries(
        {"type": st.just("array"), "items": inner},
        optional={
            "minItems": st.integers(0, 3),
            "maxItems": st.integers(0, 20),
            "uniqueItems": st.booleans(),
        },
    )
    obj = st.fixed_dictionaries(
        {"type": st.just("object"), "properties": st.dictionaries(st.sampled_from("abcd"), inner)},
        optional={
            "additionalProperties": st.booleans() | inner,
            "minProperties": st.integers(0, 3),
            "maxProperties": st.integers(0, 6),
            "required": st.lists(st.sampled_from("abcd"), unique=True, max_size=2),
        },
    )
    combinator = st.sampled_from(["allOf", "anyOf", "oneOf"]).flatmap(
        lambda key: st.fixed_dictionaries({key: st.lists(inner, min_size=1, max_size=3)})
    )
    negation = st.fixed_dictionaries({"not": inner})
    return array | obj | combinator | negation


schemas = st.recursive(scalar_schemas(), compound, max_leaves=8)


def values_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values shaped like ``schema`` (so the walk gets past the type check), or anything."""
    typ = schema.get("type")
    if typ == "object":
        props = schema.get("properties", {})
        shaped = st.fixed_dictionaries(
            {}, optional={k: values_for(v) for k, v in props.items()}
        ) | st.dictionaries(strings, json_values, max_size=8)
        return shaped
    if typ == "array":
        return st.lists(values_for(schema["items"]), max_size=25) | json_values
    return json_values


@st.composite
def schema_and_value(draw: st.DrawFn) -> tuple[dict[str, Any], Any]:
    schema = draw(schemas)
    return schema, draw(values_for(schema))


@given(schema_and_value())
def test_validator_and_explainer_never_raise(case: tuple[dict[str, Any], Any]) -> None:
    schema, value = case
    problems: list[str] = []
    converted = to_json_schema(schema, "schema", problems)
    assume(not problems)
    validator = SchemaValidator(converted)
    started = time.perf_counter()
    messages = validator.errors(value, "input")
    assert time.perf_counter() - started < TIME_LIMIT
    assert len(messages) <= MAX_MESSAGES + 1
    for message in messages:
        assert isinstance(message, str) and message.startswith("input")
        assert len(message) <= MAX_MESSAGE_LEN
    # The explainer alone (as after an error in fastjsonschema) never raises either, and
    # finds no problem in a value the fast validator accepts.
    found = Explainer("input").explain(compile_node(converted), value)
    if not messages:
        assert found == []
