"""Request body limits and the one JSON language: nesting depth before parsing, surrogates."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from catwalk.body_limits import too_deep
from catwalk.config import ServerSettings
from catwalk.model import LoadedModel
from catwalk.server.app import create_app
from catwalk.server.envelope import PredictFailed, Predictor

Load = Callable[[str], LoadedModel]
RNG_INPUT = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}
LONG = b"12345678901234567890123"
DEPTH_MESSAGE = "body: nested more than 64 levels deep (the limit, server.limits.max_depth)"


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


# Strings full of what the byte scan must not mistake for structure.
tricky_text = st.text(alphabet='[]{}"\\\\/:,abu0', max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=60,
)


@given(json_values, st.integers(min_value=1, max_value=12), st.booleans())
def test_the_byte_scan_measures_depth_exactly(value: Any, limit: int, ascii: bool) -> None:
    body = json.dumps(value, ensure_ascii=ascii).encode()
    assert too_deep(body, limit) is (depth(value) > limit)


@pytest.mark.parametrize("levels", [64, 65, 200, 1000, 5000])
def test_deep_chains_and_combs(levels: int) -> None:
    chain = b"[" * levels + b"]" * levels
    assert too_deep(chain, 64) is (levels > 64)
    comb = b"[1," * levels + b"2" + b"]" * levels  # depth grows next to leaves
    assert too_deep(comb, 64) is (levels > 64)
    wide = b"[" + b",".join([b"[" * 63 + b"]" * 63] * 1000) + b"]"
    assert too_deep(wide, 64) is False
    assert too_deep(wide, 63) is True


def nest(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def predict(predictor: Predictor, body: bytes) -> tuple[int, dict[str, Any]]:
    try:
        _, answer = predictor.handle(body)
    except PredictFailed as exc:
        return exc.error.status, {"correlation_id": exc.correlation_id, "message": str(exc.error)}
    return 200, json.loads(answer)  # exact integers


@pytest.mark.parametrize(
    ("where", "levels"),
    [("extra_data", 970), ("extra_data", 63), ("input", 960), ("input", 62)],
)
def test_deep_bodies_are_refused_before_parsing(load: Load, where: str, levels: int) -> None:
    # The envelope counts as a level, and so does the input object around "free".
    predictor = Predictor(load("keywords"))
    if where == "extra_data":
        body = b'{"input": {}, "extra_data": ' + nest(levels) + b"}"
        total = 1 + levels
    else:
        body = b'{"input": {"free": ' + nest(levels) + b"}}"
        total = 2 + levels
    status, answer = predict(predictor, body)
    if total > 64:
        assert (status, answer["message"]) == (400, DEPTH_MESSAGE)
    else:
        assert status == 200


def test_depth_with_a_long_number_is_refused_too(load: Load) -> None:
    # Over 1,024 levels orjson refuses the body and the exact-integer parser (recursive) used
    # to see it: RecursionError, 500.
    body = b'{"input": {"count": ' + LONG + b', "free": ' + b"[" * 1100 + b"]" * 1100 + b"}}"
    status, answer = predict(Predictor(load("keywords")), body)
    assert (status, answer["message"]) == (400, DEPTH_MESSAGE)


def test_max_depth_comes_from_the_settings(load: Load) -> None:
    client = create_app(load("rng"), ServerSettings(max_depth=3)).test_client()
    ok = {"input": RNG_INPUT, "extra_data": {"a": {"b": 1}}}
    assert client.post("/predict", json=ok).status_code == 200
    deep = {"input": RNG_INPUT, "extra_data": {"a": {"b": [1]}}}
    answer = client.post("/predict", json=deep)
    assert answer.status_code == 400
    assert answer.json["output"]["message"] == (
        "body: nested more than 3 levels deep (the limit, server.limits.max_depth)"
    )


@pytest.mark.parametrize("long_number", [False, True])
@pytest.mark.parametrize(
    "text", [b'"\\ud800"', b'"\\udfff"', b'"a\\ud800b"', b'"\\ud800\\u0041"', b'"\\\\\\ud800"']
)
def test_lone_surrogates_are_refused_by_both_parsers(
    load: Load, text: bytes, long_number: bool
) -> None:
    extra = b', "count": ' + LONG if long_number else b""
    body = b'{"input": {"level": ' + text + extra + b"}}"
    status, answer = predict(Predictor(load("keywords")), body)
    assert status == 400
    assert answer["message"].startswith("body: not valid JSON")


@pytest.mark.parametrize("long_number", [False, True])
def test_surrogate_pairs_are_accepted_by_both_parsers(load: Load, long_number: bool) -> None:
    extra = b', "step": ' + LONG if long_number else b""
    body = b'{"input": {"level": "\\ud83d\\ude00"' + extra + b"}}"
    status, answer = predict(Predictor(load("keywords")), body)
    assert status == 400
    assert answer["message"].startswith('input.level: "\U0001f600" is not one of')


def test_a_surrogate_correlation_id_gives_a_json_400_with_a_fresh_id(load: Load) -> None:
    client = create_app(load("keywords"), ServerSettings()).test_client()
    body = b'{"correlation_id": "\\ud800", "input": {"count": "x", "step": ' + LONG + b"}}"
    answer = client.post("/predict", data=body, content_type="application/json")
    assert answer.status_code == 400
    reply = orjson.loads(answer.data)
    assert reply["output"]["message"].startswith("body: not valid JSON")
    assert len(reply["correlation_id"]) == 36  # a generated id, not the client's


@pytest.mark.parametrize(
    "body",
    [
        '{"input": {"count": 12345678901234567890123}}'.encode("utf-16"),
        '{"input": {"count": 12345678901234567890123}}'.encode("utf-32"),
        b'\xef\xbb\xbf{"input": {"count": 12345678901234567890123}}',
        b'{"input": {"level": "\xed\xa0\x80", "count": 12345678901234567890123}}',
        b'{"input": {"count": 12345678901234567890123, }}',
        b'{"input": {"count": NaN, "step": 12345678901234567890123}}',
    ],
)
def test_what_orjson_refuses_the_exact_parser_refuses(load: Load, body: bytes) -> None:
    status, answer = predict(Predictor(load("keywords")), body)
    assert status == 400
    assert answer["message"].startswith("body: not valid JSON")


def test_long_numbers_still_take_the_exact_path(load: Load) -> None:
    big = 10**400
    body = b'{"input": {"step": %d}, "extra_data": {"n": %d, "s": "\\u0030%s"}}' % (
        big,
        big + 1,
        b"9" * 30,
    )
    status, answer = predict(Predictor(load("keywords")), body)
    assert status == 200
    assert answer["extra_data"] == {"n": big + 1, "s": "0" + "9" * 30}
    assert answer["input"] == {"step": big}


def test_loads_without_the_server_limit_never_raises_recursion_error() -> None:
    # catwalk predict reads JSON lines with loads(): 1,000 levels pass orjson but not the
    # standard library's recursive parser (the exact-integer path).
    from catwalk.errors import InvalidRequest
    from catwalk.json_codec import loads

    body = b'{"n": ' + LONG + b', "x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    with pytest.raises(InvalidRequest, match="nested too deeply"):
        loads(body)
