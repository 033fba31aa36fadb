"""A repository's app in process (Flask's test client): routing, messages, index, docs."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from repo_fixtures import SHOP

from catwalk.config import ServerSettings
from catwalk.config_models import ModelsSettings
from catwalk.errors import ModelLoadError
from catwalk.repository.load import load_repository
from catwalk.server.logs.jsonlog import JsonFormatter
from catwalk.server.repository_app import create_repository_app
from catwalk.server.shadow import QUEUE_SIZE, ShadowJob


def client_for(path: Path, **models: Any) -> FlaskClient:
    settings = ServerSettings(workers=1, models=ModelsSettings(**models))
    app = create_repository_app(load_repository(path, settings.models), settings)
    return app.test_client()


@pytest.fixture(scope="module")
def shop() -> FlaskClient:
    return client_for(SHOP, default="price")


def predict(client: FlaskClient, body: dict[str, Any], path: str = "/predict") -> Any:
    return client.post(path, json=body)


def test_the_envelope_picks_the_model(shop: FlaskClient) -> None:
    answer = predict(shop, {"model": {"name": "scale", "version": "1.9"}, "input": {"x": 2}})
    assert answer.status_code == 200
    assert answer.get_json()["model"] == {"name": "scale", "version": "1.9"}
    assert answer.get_json()["output"] == {"y": 2}
    assert answer.headers["X-Catwalk-Model"] == "scale@1.9"
    answer = predict(shop, {"model": {"name": "scale"}, "input": {"x": 2}})
    assert answer.get_json()["output"] == {"y": 4}  # 1.10 (PEP 440: above 1.9), y = 2x
    assert answer.headers["X-Catwalk-Model"] == "scale@1.10"


def test_no_model_reaches_the_default(shop: FlaskClient) -> None:
    answer = predict(shop, {"input": {"x": 2}})
    assert answer.status_code == 200
    assert answer.get_json()["output"] == {"y": 20}
    assert answer.headers["X-Catwalk-Model"] == "price@0.1"


def test_the_path_picks_the_model(shop: FlaskClient) -> None:
    answer = predict(shop, {"input": {"x": 1}}, "/models/scale/predict")
    assert (answer.status_code, answer.get_json()["output"]) == (200, {"y": 2})
    answer = predict(shop, {"input": {"x": 1}}, "/models/scale/versions/1.9/predict")
    assert answer.get_json()["model"] == {"name": "scale", "version": "1.9"}
    answer = predict(shop, {"model": {"name": "price"}, "input": {"x": 1}}, "/models/scale/predict")
    assert answer.status_code == 400
    assert answer.get_json()["output"]["message"] == (
        "model: the body names price, the path scale: name one model"
    )


def test_a_model_not_loaded_is_a_404_naming_what_is(shop: FlaskClient) -> None:
    answer = predict(shop, {"model": {"name": "scale", "version": "2.0"}, "input": {"x": 1}})
    assert answer.status_code == 404
    assert answer.get_json()["output"]["message"] == (
        "model 'scale' version '2.0' not found: this server serves price 0.1; scale 1.9, 1.10"
    )
    answer = predict(shop, {"input": {"x": 1}}, "/models/nope/predict")
    assert answer.status_code == 404
    assert "model 'nope' not found" in answer.get_json()["output"]["message"]
    answer = shop.post("/v2/models/nope/infer", json={"inputs": []})
    assert answer.status_code == 404
    assert answer.get_json() == {
        "error": "model 'nope' not found: this server serves price 0.1; scale 1.9, 1.10"
    }


def test_no_default_among_several_names_is_a_400_listing_them() -> None:
    client = client_for(SHOP)
    answer = predict(client, {"input": {"x": 1}})
    assert answer.status_code == 400
    message = answer.get_json()["output"]["message"]
    assert "(price, scale)" in message and "models.default" in message


def test_a_malformed_model_field_is_a_400(shop: FlaskClient) -> None:
    for model, message in (
        (None, "model: must be an object with name (and version), got null"),
        ({"version": "1.9"}, "model.name: required field missing"),
        ({"name": "scale", "tag": "x"}, "model.tag: unknown field (allowed: name, version)"),
        ({"name": 3}, "model.name: must be a string, got number"),
    ):
        answer = predict(shop, {"model": model, "input": {"x": 1}})
        assert answer.status_code == 400
        assert answer.get_json()["output"]["message"] == message


def test_the_index_info_and_ready(shop: FlaskClient) -> None:
    index = shop.get("/models").get_json()["models"]
    assert index == [
        {"name": "price", "version": "0.1", "default": True},
        {"name": "scale", "version": "1.9", "default": False},
        {"name": "scale", "version": "1.10", "default": True},
    ]
    info = shop.get("/info").get_json()
    assert info["default"] == "price"
    assert [(m["name"], m["version"], m["default"]) for m in info["models"]] == [
        ("price", "0.1", True),
        ("scale", "1.9", False),
        ("scale", "1.10", True),
    ]
    assert shop.get("/ready").status_code == 200


def test_the_openapi_document_shows_every_models_schema(shop: FlaskClient) -> None:
    document = shop.get("/openapi.json").get_json()
    validate(document)
    paths = document["paths"]
    for path in (
        "/predict",
        "/models",
        "/models/price/predict",
        "/models/scale/predict",
        "/models/scale/versions/1.9/predict",
        "/models/scale/versions/1.10/predict",
        "/v2/models/scale/versions/1.9/infer",
        "/v2/models/scale/infer",
        "/status",
    ):
        assert path in paths, path
    schemas = document["components"]["schemas"]
    assert "scale_1.9.Input" in schemas and "price_0.1.Output" in schemas
    ref = paths["/models/scale/versions/1.9/predict"]["post"]["requestBody"]
    assert ref["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/scale_1.9.PredictRequest"
    }
    assert shop.get("/docs").status_code == 200


def test_the_open_inference_protocol_paths_name_the_model(shop: FlaskClient) -> None:
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [3.0]}]}
    answer = shop.post("/v2/models/scale/versions/1.9/infer", json=body)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["model_version"] == "1.9"
    assert answer.headers["X-Catwalk-Model"] == "scale@1.9"
    answer = shop.post("/v2/models/scale/infer", json=body)
    assert answer.get_json()["model_version"] == "1.10"
    assert answer.get_json()["outputs"][0]["data"] == [6.0]
    assert shop.get("/v2/models/price").get_json()["name"] == "price"


def test_a_model_that_fails_to_load_stops_the_start_naming_it(
    make_repo: Callable[..., Path],
) -> None:
    root = make_repo(("good", "a", "1", {}), ("bad", "b", "2", {"fail_load": True}))
    with pytest.raises(ModelLoadError) as caught:
        load_repository(root, ModelsSettings())
    message = str(caught.value)
    assert message.startswith(f"model b 2 ({root / 'bad'}) cannot be loaded")
    assert "RuntimeError: this model refuses to load" in message


def test_a_shadow_never_changes_nor_delays_the_answer(make_repo: Callable[..., Path]) -> None:
    root = make_repo(
        ("v1", "m", "1.0", {"factor": 1}),
        ("slow", "m", "2.0", {"factor": 3, "sleep": 2}),
        ("raising", "n", "2.0", {"raise": True}),
        ("n1", "n", "1.0", {"factor": 5}),
    )
    client = client_for(
        root, default="m", versions={"m": "1.0", "n": "1.0"}, shadow={"m": "2.0", "n": "2.0"}
    )
    started = time.monotonic()
    answer = predict(client, {"input": {"x": 2}, "correlation_id": "c-1"})
    took = time.monotonic() - started
    assert answer.get_json()["output"] == {"y": 2}  # 1.0's answer, not the shadow's 6
    assert answer.headers["X-Catwalk-Model"] == "m@1.0"
    assert took < 1.0  # the shadow sleeps 2 s elsewhere
    answer = predict(client, {"model": {"name": "n"}, "input": {"x": 2}})
    assert answer.get_json()["output"] == {"y": 10}  # a raising shadow harms nothing
    shadows = client.application.shadows  # type: ignore[attr-defined]
    shadows.join()
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'catwalk_shadow_total{name="m",outcome="different",version="2.0"} 1.0' in metrics
    assert 'catwalk_shadow_total{name="n",outcome="error",version="2.0"} 1.0' in metrics
    assert 'catwalk_model_requests_total{name="m",status="200",version="1.0"} 1.0' in metrics


def test_the_request_log_names_the_model(
    shop: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="catwalk.server")
    predict(shop, {"model": {"name": "scale", "version": "1.9"}, "input": {"x": 1}})
    predict(shop, {"input": {"x": 1}, "correlation_id": "mine"}, "/models/nope/predict")
    lines = [r for r in caplog.records if r.name == "catwalk.server"]
    assert lines[0].getMessage().endswith(" model=scale@1.9")
    assert lines[0].getMessage().startswith("POST /predict 200 ")
    fields = json.loads(JsonFormatter().format(lines[0]))
    assert (fields["model_name"], fields["model_version"], fields["status"]) == (
        "scale",
        "1.9",
        200,
    )
    assert "model=" not in lines[1].getMessage()  # no model answered the 404


def test_a_shadow_slower_than_the_traffic_drops_runs_counted_as_errors(
    make_repo: Callable[..., Path], caplog: pytest.LogCaptureFixture
) -> None:
    root = make_repo(
        ("v1", "m", "1.0", {"factor": 1}),
        ("v2", "m", "2.0", {"factor": 1, "sleep": 0.01}),
    )
    client = client_for(root, versions={"m": "1.0"}, shadow={"m": "2.0"})
    served = client.application.served  # type: ignore[attr-defined]
    runner = client.application.shadows  # type: ignore[attr-defined]
    answer = predict(client, {"input": {"x": 1}}).get_data()
    shadow = served["m@2.0"].model
    for i in range(QUEUE_SIZE + 40):  # far faster than 10 ms a run
        runner.submit(ShadowJob(shadow, "m@1.0", answer, f"c-{i}"))
    runner.join()
    metrics = client.get("/metrics").get_data(as_text=True)
    errors = re.search(
        r'catwalk_shadow_total\{name="m",outcome="error",version="2.0"\} (\S+)', metrics
    )
    same = re.search(
        r'catwalk_shadow_total\{name="m",outcome="same",version="2.0"\} (\S+)', metrics
    )
    assert errors is not None and same is not None
    assert float(errors.group(1)) >= 30  # dropped: the queue was full
    assert float(errors.group(1)) + float(same.group(1)) == QUEUE_SIZE + 41
    assert any("run(s) dropped so far" in r.getMessage() for r in caplog.records)


def test_the_index_shows_traffic_and_shadow_and_v2_splits_by_header() -> None:
    client = client_for(SHOP, default="scale", traffic={"scale": {"1.9": 50, "1.10": 50}})
    assert client.get("/models").get_json()["models"] == [
        {"name": "price", "version": "0.1", "default": True},
        {"name": "scale", "version": "1.9", "default": False, "traffic": 50},
        {"name": "scale", "version": "1.10", "default": True, "traffic": 50},
    ]
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]}
    seen = set()
    for i in range(40):
        headers = {"X-Correlation-Id": f"user-{i}"}
        first = client.post("/v2/models/scale/infer", json=body, headers=headers)
        again = client.post("/v2/models/scale/infer", json=body, headers=headers)
        assert first.headers["X-Catwalk-Model"] == again.headers["X-Catwalk-Model"]
        seen.add(first.headers["X-Catwalk-Model"])
    assert seen == {"scale@1.9", "scale@1.10"}
