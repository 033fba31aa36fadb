"""The REST contract, through Flask's test client against create_app."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from catwalk.config import ServerSettings
from catwalk.model import LoadedModel
from catwalk.server.app import create_app

RNG_INPUT = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}
RNG_SCORE = 0.9417154046806644
ClientFactory = Callable[..., FlaskClient]


@pytest.fixture
def rng(make_client: ClientFactory) -> FlaskClient:
    return make_client("rng")


def post(client: FlaskClient, body: Any, **kwargs: Any) -> Any:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post("/predict", data=data, content_type="application/json", **kwargs)


def error_of(response: Any, status: int) -> str:
    """Check an error response's status, content type and shape; return its message."""
    assert response.status_code == status, response.data
    assert response.headers["Content-Type"] == "application/json"
    body = orjson.loads(response.data)
    assert set(body) == {"correlation_id", "output"}
    assert isinstance(body["correlation_id"], str) and body["correlation_id"]
    message = body["output"]["message"]
    assert isinstance(message, str) and message
    assert "Traceback" not in message
    return str(message)


# -- GET /status and /info -------------------------------------------------------------------


def test_status_is_200_with_a_tiny_json_body(rng: FlaskClient) -> None:
    response = rng.get("/status")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.get_json() == {"status": "ok"}


def test_info_is_the_spec(make_client: ClientFactory, load: Callable[[str], LoadedModel]) -> None:
    for name in ("rng", "batch", "dataframe"):
        response = make_client(name).get("/info")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.get_json() == load(name).spec.info()


def test_info_keeps_model_yml_key_order(rng: FlaskClient) -> None:
    info = orjson.loads(rng.get("/info").data)
    assert list(info) == ["name", "version", "contact", "schema", "io_type", "description"]
    assert list(info["schema"]["input"]["properties"]) == ["seed", "seed_version", "mu", "sigma"]


# -- POST /predict: the envelope ------------------------------------------------------------


def test_predict_answers_the_envelope_plus_output(rng: FlaskClient) -> None:
    response = post(rng, {"input": RNG_INPUT})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = orjson.loads(response.data)
    assert list(body) == ["correlation_id", "model", "input", "output"]
    assert body["model"] == {"name": "RNGModel", "version": "0.0.1"}
    assert body["input"] == RNG_INPUT
    assert body["output"] == {"score": RNG_SCORE}


def test_generated_correlation_ids_are_unique_uuid4s(rng: FlaskClient) -> None:
    ids = {orjson.loads(post(rng, {"input": RNG_INPUT}).data)["correlation_id"] for _ in range(5)}
    assert len(ids) == 5
    for value in ids:
        assert uuid.UUID(value).version == 4


def test_given_correlation_id_is_echoed(rng: FlaskClient) -> None:
    body = post(rng, {"correlation_id": "abc-123", "input": RNG_INPUT}).get_json()
    assert body["correlation_id"] == "abc-123"


def test_matching_model_is_accepted_and_echoed(rng: FlaskClient) -> None:
    ref = {"name": "RNGModel", "version": "0.0.1"}
    response = post(rng, {"model": ref, "input": RNG_INPUT})
    assert response.status_code == 200
    assert response.get_json()["model"] == ref


def test_matching_model_in_any_key_order_is_accepted(rng: FlaskClient) -> None:
    response = post(rng, {"model": {"version": "0.0.1", "name": "RNGModel"}, "input": RNG_INPUT})
    assert response.status_code == 200


def test_extra_data_is_echoed_untouched(rng: FlaskClient) -> None:
    extra = {
        "nested": {"deep": [1, 2.5, None, True, "é ☃"], "empty": {}},
        "big": 12345678901234567,
        "float": 0.1,
        "unicode": "日本語",
    }
    body = orjson.loads(post(rng, {"input": RNG_INPUT, "extra_data": extra}).data)
    assert body["extra_data"] == extra
    assert list(body) == ["correlation_id", "model", "input", "extra_data", "output"]


def test_extra_data_is_never_validated(rng: FlaskClient) -> None:
    extra = {"input": "not the schema", "correlation_id": 5, "model": None}
    response = post(rng, {"input": RNG_INPUT, "extra_data": extra})
    assert response.status_code == 200
    assert response.get_json()["extra_data"] == extra


def test_any_content_type_is_accepted(rng: FlaskClient) -> None:
    # curl -d sends application/x-www-form-urlencoded unless told otherwise.
    data = orjson.dumps({"input": RNG_INPUT})
    for content_type in ("application/x-www-form-urlencoded", "text/plain", None):
        response = rng.post("/predict", data=data, content_type=content_type)
        assert response.status_code == 200, content_type


# -- POST /predict: 400 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"this is not json", "body: not valid JSON"),
        (b"", "body: not valid JSON"),
        (b'{"input": ', "body: not valid JSON"),
        (b"\xff\xfe", "body: not valid JSON"),
        (b"[1, 2]", "body: must be a JSON object (the request envelope), got array"),
        (b'"text"', "body: must be a JSON object (the request envelope), got string"),
        (b"null", "body: must be a JSON object (the request envelope), got null"),
        (b"{}", "input: required field missing"),
        (b'{"correlation_id": "x"}', "input: required field missing"),
    ],
)
def test_malformed_bodies_are_400(rng: FlaskClient, body: bytes, expected: str) -> None:
    assert error_of(post(rng, body), 400).startswith(expected)


def test_input_failing_the_schema_names_the_field(rng: FlaskClient) -> None:
    bad = {**RNG_INPUT, "mu": "one"}
    assert error_of(post(rng, {"input": bad}), 400) == """input.mu: "one" is not of type 'number'"""


def test_every_input_problem_is_listed(rng: FlaskClient) -> None:
    bad = {"seed": 1.5, "seed_version": 2, "mu": 0.0, "sigma": -1, "extra": 1}
    message = error_of(post(rng, {"input": bad}), 400)
    assert "input.sigma: -1 is less than the minimum of 0" in message
    assert "input.seed: 1.5 is not of type 'integer'" in message
    assert '"extra" was unexpected' in message


def test_missing_input_field_is_named(rng: FlaskClient) -> None:
    bad = {k: v for k, v in RNG_INPUT.items() if k != "sigma"}
    assert '"sigma" is a required property' in error_of(post(rng, {"input": bad}), 400)


@pytest.mark.parametrize(
    ("envelope", "expected"),
    [
        ({"extra_data": [1, 2]}, "extra_data: must be an object, got array"),
        ({"extra_data": "text"}, "extra_data: must be an object, got string"),
        ({"extra_data": None}, "extra_data: must be an object, got null"),
        ({"correlation_id": 42}, "correlation_id: must be a non-empty string, got number"),
        ({"correlation_id": ""}, "correlation_id: must be a non-empty string, got string"),
        ({"correlation_id": None}, "correlation_id: must be a non-empty string, got null"),
        ({"model": "RNGModel"}, "model: must be an object with name and version, got string"),
        ({"model": {"name": "RNGModel"}}, "model.version: required field missing"),
        ({"model": {"name": "RNGModel", "version": 1}}, "model.version: must be a string"),
        (
            {"model": {"name": "RNGModel", "version": "0.0.1", "x": 1}},
            "model.x: unknown field (allowed: name, version)",
        ),
        (
            {"extradata": {}},
            "extradata: unknown field (allowed: correlation_id, model, input, extra_data)",
        ),
        ({"output": {}}, "output: unknown field"),
    ],
)
def test_malformed_envelope_fields_are_400(
    rng: FlaskClient, envelope: dict[str, Any], expected: str
) -> None:
    assert error_of(post(rng, {"input": RNG_INPUT, **envelope}), 400).startswith(expected)


def test_errors_carry_the_given_correlation_id(rng: FlaskClient) -> None:
    response = post(rng, {"correlation_id": "trace-me", "input": {"seed": "x"}})
    assert response.status_code == 400
    assert response.get_json()["correlation_id"] == "trace-me"
    response = post(rng, {"correlation_id": "trace-me", "model": {"name": "a", "version": "b"}})
    assert response.get_json()["correlation_id"] == "trace-me"


# -- POST /predict: 404 wrong model ----------------------------------------------------------


@pytest.mark.parametrize(
    "ref", [{"name": "Other", "version": "0.0.1"}, {"name": "RNGModel", "version": "0.0.2"}]
)
def test_wrong_model_name_or_version_is_404(rng: FlaskClient, ref: dict[str, str]) -> None:
    message = error_of(post(rng, {"model": ref, "input": RNG_INPUT}), 404)
    wanted = f"{ref['name']} {ref['version']}"
    assert message == f"model: this server serves RNGModel 0.0.1, not {wanted}"


# -- POST /predict: 500 ----------------------------------------------------------------------


def test_model_raising_is_500_with_type_and_message_and_is_logged(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client("raises")
    with caplog.at_level(logging.INFO, logger="catwalk.server"):
        response = post(client, {"correlation_id": "c-1", "input": {"x": 1, "label": "boom"}})
    message = error_of(response, 500)
    assert message == "predict raised ValueError: cannot predict 'boom'"
    assert response.get_json()["correlation_id"] == "c-1"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    text = errors[0].getMessage()
    assert "c-1" in text and "Traceback" in text and "raises/model.py" in text
    # ... and the next request is served normally.
    ok = post(client, {"input": {"x": 2, "label": "fine"}})
    assert ok.status_code == 200
    assert ok.get_json()["output"] == {"x": 2, "label": "fine"}


def test_model_calling_sys_exit_is_500_not_the_end(make_client: ClientFactory) -> None:
    client = make_client("raises")
    assert error_of(post(client, {"input": {"x": 1, "label": "exit"}}), 500) == (
        "predict raised SystemExit: 3"
    )
    assert post(client, {"input": {"x": 1, "label": "fine"}}).status_code == 200


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("wrong_type", """output.x: "not a number" is not of type 'number'"""),
        ("missing", 'output: "x" is a required property'),
        ("inf", "output.x: inf cannot be represented in JSON"),
        ("object", "output.x: value of type object cannot be converted to JSON"),
    ],
)
def test_bad_outputs_are_500_naming_the_field(
    make_client: ClientFactory, label: str, expected: str
) -> None:
    client = make_client("bad_output")
    assert error_of(post(client, {"input": {"x": 1, "label": label}}), 500).startswith(expected)
    assert post(client, {"input": {"x": 1, "label": "fine"}}).status_code == 200


def test_output_validation_can_be_switched_off(make_client: ClientFactory) -> None:
    client = make_client("bad_output", validate_output=False)
    response = post(client, {"input": {"x": 1, "label": "wrong_type"}})
    assert response.status_code == 200
    assert response.get_json()["output"] == {"x": "not a number", "label": "wrong_type"}


def test_numpy_outputs_are_normalised(make_client: ClientFactory) -> None:
    response = post(make_client("numpy_output"), {"input": {"x": 1.5, "label": "a"}})
    assert response.status_code == 200
    assert response.get_json()["output"] == {"x": 3.0, "label": "a"}


def test_an_unexpected_error_is_500_json_and_logged(
    load: Callable[[str], LoadedModel], caplog: pytest.LogCaptureFixture
) -> None:
    model = load("rng")
    app = create_app(model, ServerSettings())

    def broken_input_errors(value: Any, prefix: str = "input") -> list[str]:
        raise RuntimeError("a bug in catwalk")

    model.input_errors = broken_input_errors  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="catwalk.server"):
        response = post(app.test_client(), {"input": RNG_INPUT})
    assert error_of(response, 500) == "internal server error: RuntimeError: a bug in catwalk"
    assert any(r.exc_info for r in caplog.records)


# -- batches and DataFrames ------------------------------------------------------------------


def test_array_schema_models_take_and_return_lists(make_client: ClientFactory) -> None:
    client = make_client("batch")
    body = post(client, {"input": [RNG_INPUT, {**RNG_INPUT, "seed": 1}]}).get_json()
    assert len(body["output"]) == 2
    assert body["output"][0] == {"score": RNG_SCORE}
    message = error_of(post(client, {"input": [{**RNG_INPUT, "mu": "x"}]}), 400)
    assert message == """input[0].mu: "x" is not of type 'number'"""
    assert error_of(post(client, {"input": RNG_INPUT}), 400).startswith("input: ")


def test_dataframe_models_take_one_record_or_a_list(make_client: ClientFactory) -> None:
    client = make_client("dataframe_echo")
    one = post(client, {"input": {"x": 1.5, "label": "a"}}).get_json()
    assert one["output"] == {"x": 3.0, "label": "a"}
    many = post(client, {"input": [{"x": 1, "label": "a"}, {"x": 2, "label": "b"}]}).get_json()
    assert many["output"] == [{"x": 2, "label": "a"}, {"x": 4, "label": "b"}]
    message = error_of(post(client, {"input": [{"x": 1, "label": "a"}, {"x": "y"}]}), 400)
    assert message.startswith("input[1]")
    assert error_of(post(client, {"input": []}), 400) == "input: must not be an empty list"


# -- unknown routes, methods, body size ------------------------------------------------------


def test_unknown_route_is_404_json(rng: FlaskClient) -> None:
    message = error_of(rng.get("/nope"), 404)
    assert message.startswith("no such endpoint: GET /nope")


def test_wrong_method_is_405_json_with_allow(rng: FlaskClient) -> None:
    response = rng.get("/predict")
    assert error_of(response, 405) == "method not allowed: GET /predict (allowed: POST)"
    assert "POST" in response.headers["Allow"]
    assert error_of(rng.post("/status"), 405).startswith("method not allowed: POST /status")


def test_body_larger_than_max_body_size_is_413_json(make_client: ClientFactory) -> None:
    client = make_client("rng", max_body_size="1k")
    padding = {"pad": "x" * 2000}
    message = error_of(post(client, {"input": RNG_INPUT, "extra_data": padding}), 413)
    assert message == "body: too large: the limit is 1k (server.max_body_size)"
    assert post(client, {"input": RNG_INPUT}).status_code == 200


# -- logging ---------------------------------------------------------------------------------


def test_every_request_is_logged_once_with_id_status_and_latency(
    rng: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="catwalk.server"):
        post(rng, {"correlation_id": "log-me", "input": RNG_INPUT})
        post(rng, {"correlation_id": "bad-one", "input": {}})
        rng.get("/nope")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(lines) == 3
    assert lines[0].startswith("POST /predict 200 ") and "correlation_id=log-me" in lines[0]
    assert lines[1].startswith("POST /predict 400 ") and "correlation_id=bad-one" in lines[1]
    assert lines[2].startswith("GET /nope 404 ")
    assert all("ms correlation_id=" in line for line in lines)


def test_nothing_is_logged_per_request_above_info(
    rng: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="catwalk.server"):
        post(rng, {"input": RNG_INPUT})
        post(rng, {"input": {}})
    assert not caplog.records


def test_a_naive_datetime_500_says_what_to_return(make_client: ClientFactory) -> None:
    # Issue 17: every prediction was a 500 "is not a valid date-time", with no hint why.
    client = make_client("naive_time")
    message = error_of(post(client, {"input": {"aware": False}}), 500)
    assert message.startswith('output.when: "2024-05-01T12:30:00" is not a valid date-time')
    assert "no UTC offset" in message and "timezone.utc" in message
    answer = post(client, {"input": {"aware": True}})
    assert answer.status_code == 200
    assert answer.get_json()["output"] == {"when": "2024-05-01T12:30:00+00:00"}


def test_a_null_that_the_model_refuses_is_a_short_500_naming_the_field(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 17: scikit-learn's whole ValueError (advice, two URLs) went to the API client.
    client = make_client("nan_sklearn")
    assert post(client, {"input": {"a": 1.0, "b": 1.0}}).status_code == 200
    message = error_of(post(client, {"input": {"a": 1.0, "b": None}}), 500)
    assert message.startswith("predict raised ValueError: Input X contains NaN.")
    assert "input.b is null: model.yml allows null there (nullable)" in message
    assert "scikit-learn.org" not in message and "\n" not in message
    assert "scikit-learn.org" in caplog.text  # the whole text stays in the server's log
