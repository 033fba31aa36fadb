"""Exact big integers, the echoed input, correlation id limits, safe logs, nginx's request id,
gunicorn's worker abort."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from catwalk.config import ServerSettings
from catwalk.model import LoadedModel
from catwalk.server import messages
from catwalk.server.app import create_app
from catwalk.server.envelope import PredictFailed, Predictor
from catwalk.server.logs import safe
from catwalk.server.worker.wsgi import ServedApp

Load = Callable[[str], LoadedModel]
ClientFactory = Callable[..., FlaskClient]
RNG_INPUT = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}
BIG = 123456789012345678901234567890


def post(client: FlaskClient, body: bytes, **kwargs: Any) -> Any:
    return client.post("/predict", data=body, content_type="application/json", **kwargs)


# -- 1. integers beyond 64 bits stay exact ---------------------------------------------------


@pytest.mark.parametrize(
    "value", [BIG, -BIG, 2**64, -(2**63) - 1, 10**400, {"deep": [BIG, 1.5, "x" * 30]}]
)
def test_extra_data_with_big_integers_is_echoed_exactly(load: Load, value: Any) -> None:
    body = json.dumps({"input": RNG_INPUT, "extra_data": {"id": value}}).encode()
    _, answer = Predictor(load("rng")).handle(body)
    assert json.loads(answer)["extra_data"] == {"id": value}
    assert b"e+" not in answer


def test_a_big_integer_input_reaches_the_model_as_an_exact_int(load: Load) -> None:
    _, answer = Predictor(load("big_ints")).handle(b'{"input": {"n": %d}}' % BIG)
    response = json.loads(answer)
    assert response["input"] == {"n": BIG}
    assert response["output"] == {"n": BIG, "type": "int"}


def test_schema_bounds_still_apply_to_big_integers(load: Load) -> None:
    with pytest.raises(PredictFailed) as caught:
        Predictor(load("big_ints")).handle(b'{"input": {"n": 1, "small": %d}}' % BIG)
    assert caught.value.error.status == 400
    assert "input.small" in caught.value.error.message


def test_the_exact_path_rejects_what_the_fast_path_rejects(load: Load) -> None:
    predictor = Predictor(load("big_ints"))
    for body in (
        b'{"input": {"n": NaN}, "x": 12345678901234567890123}',
        b'{"input": {"n": Infinity}, "x": 1' + b"0" * 400 + b"}",
        b'{"input": {"n": 1' + b"0" * 400 + b".5}}",
        b'{"input": 1' + b"2" * 30,
    ):
        with pytest.raises(PredictFailed) as caught:
            predictor.handle(body)
        assert caught.value.error.status == 400
        assert caught.value.error.message.startswith("body: not valid JSON")


def test_long_digit_runs_in_strings_and_floats_change_nothing(load: Load) -> None:
    extra = {"s": "1234567890123456789012345", "f": 0.12345678901234568, "big_f": 1.5e300}
    body = orjson.dumps({"input": RNG_INPUT, "extra_data": extra})
    _, answer = Predictor(load("rng")).handle(body)
    assert orjson.loads(answer)["extra_data"] == extra


def test_a_big_integer_output_is_written_exactly(make_client: ClientFactory) -> None:
    response = post(make_client("bad_output"), b'{"input": {"x": 1, "label": "big"}}')
    assert response.status_code == 200
    assert json.loads(response.data)["output"] == {"x": 2**70, "label": "big"}


# -- 2. the echoed input is what the client sent ---------------------------------------------


def test_the_echoed_input_is_what_was_sent_whatever_the_model_does(load: Load) -> None:
    sent = {"x": 3, "label": "keep me", "tags": ["a", "b"]}
    _, answer = Predictor(load("mutates")).handle(orjson.dumps({"input": sent}))
    response = orjson.loads(answer)
    assert response["input"] == sent
    assert response["output"] == {"x": 3}
    assert list(response) == ["correlation_id", "model", "input", "output"]


def test_the_echoed_input_is_what_was_sent_through_http(make_client: ClientFactory) -> None:
    sent = {"input": {"x": 3, "label": "keep me", "tags": []}, "extra_data": {"k": [1]}}
    response = post(make_client("mutates"), orjson.dumps(sent))
    assert response.status_code == 200
    body = response.get_json()
    assert body["input"] == sent["input"] and body["extra_data"] == sent["extra_data"]


# -- 3. correlation ids: bounded, no control characters, logged safely -----------------------


@pytest.mark.parametrize(
    ("correlation_id", "problem"),
    [
        ("x" * 257, "correlation_id: must be at most 256 characters, got 257"),
        ("a\nINFO fake log line", "correlation_id: must not contain control characters"),
        ("tab\there", "correlation_id: must not contain control characters"),
        ("del\x7f", "correlation_id: must not contain control characters"),
        ("nel\x85", "correlation_id: must not contain control characters"),
    ],
)
def test_bad_correlation_ids_are_400_naming_the_field(
    make_client: ClientFactory, correlation_id: str, problem: str
) -> None:
    body = orjson.dumps({"correlation_id": correlation_id, "input": RNG_INPUT})
    response = post(make_client("rng"), body)
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["output"]["message"].startswith(problem)
    assert answer["correlation_id"] != correlation_id  # a generated one


@pytest.mark.parametrize("correlation_id", ["x" * 256, "ordre-n°17 ✓", "a b"])
def test_good_correlation_ids_are_echoed(make_client: ClientFactory, correlation_id: str) -> None:
    body = orjson.dumps({"correlation_id": correlation_id, "input": RNG_INPUT})
    response = post(make_client("rng"), body)
    assert response.status_code == 200
    assert response.get_json()["correlation_id"] == correlation_id


def test_client_values_cannot_forge_log_lines(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client("raises")
    with caplog.at_level(logging.DEBUG, logger="catwalk.server"):
        client.get("/nope%0AINFO%20fake%20line")
        post(client, b'{"input": {"x": 1, "label": "x"}, "bad\\nINFO fake": 1}')
        post(client, b'{"input": {"x": 1, "label": "boom\\nINFO fake"}}')
    text = "\n".join(caplog.messages)
    assert "INFO fake" in text
    for line in text.splitlines():
        assert not line.startswith("INFO fake"), text


def test_safe_escapes_only_non_printable_characters() -> None:
    assert safe("plain ✓ text") == "plain ✓ text"
    assert safe("a\nb\r\x1b[31m\u2028") == "a\\nb\\r\\x1b[31m\\u2028"


# -- 4. nginx's request id -------------------------------------------------------------------


@pytest.fixture
def behind_nginx(load: Load) -> FlaskClient:
    """The app as production mode runs it: X-Request-Id (set by nginx) is trusted, as it comes
    with the run's secret."""
    app = create_app(load("rng"), ServerSettings())
    app.wsgi_app = ServedApp(app.wsgi_app, "s3cret")  # type: ignore[method-assign]
    app.testing = True
    client = app.test_client()
    client.environ_base["HTTP_X_CATWALK_PROXY"] = "s3cret"
    return client


def test_nginx_request_id_is_the_generated_correlation_id(behind_nginx: FlaskClient) -> None:
    headers = {"X-Request-Id": "0123456789abcdef0123456789abcdef"}
    ok = post(behind_nginx, orjson.dumps({"input": RNG_INPUT}), headers=headers)
    assert ok.get_json()["correlation_id"] == headers["X-Request-Id"]
    bad = post(behind_nginx, b"not json", headers=headers)
    assert bad.status_code == 400
    assert bad.get_json()["correlation_id"] == headers["X-Request-Id"]
    missing = behind_nginx.get("/nope", headers=headers)
    assert missing.get_json()["correlation_id"] == headers["X-Request-Id"]


def test_a_client_correlation_id_is_logged_with_the_request_id(
    behind_nginx: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    body = orjson.dumps({"correlation_id": "order-17", "input": RNG_INPUT})
    with caplog.at_level(logging.INFO, logger="catwalk.server"):
        reply = post(behind_nginx, body, headers={"X-Request-Id": "feedbeef"})
    assert reply.get_json()["correlation_id"] == "order-17"
    assert any(
        m.endswith("correlation_id=order-17 request_id=feedbeef") for m in caplog.messages
    ), caplog.messages


def test_without_nginx_a_client_x_request_id_is_not_trusted(make_client: ClientFactory) -> None:
    reply = post(
        make_client("rng"), orjson.dumps({"input": RNG_INPUT}), headers={"X-Request-Id": "mine"}
    )
    assert reply.status_code == 200
    assert reply.get_json()["correlation_id"] != "mine"


# -- 6. one 413 message ----------------------------------------------------------------------


def test_the_app_says_too_large_in_the_shared_words(make_client: ClientFactory) -> None:
    client = make_client("rng", max_body_size="1k")
    response = post(client, b'{"input": "' + b"x" * 4096 + b'"}')
    assert response.status_code == 413
    assert response.get_json()["output"]["message"] == messages.too_large("1k")
