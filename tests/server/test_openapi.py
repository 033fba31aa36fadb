"""GET /openapi.json: a valid OpenAPI 3.1 document built from the model's own schema."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from catwalk.config import AuthSettings, ServerSettings
from catwalk.model import LoadedModel
from catwalk.server.app import create_app
from catwalk.server.openapi import openapi_document, schema_example
from catwalk.spec import parse_spec

ERRORS = ("400", "404", "413", "500", "502", "504")


def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.content_type == "application/json"
    body: dict[str, Any] = response.get_json()
    return body


def as_validator(doc: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A JSON Schema 2020-12 validator of one component (its refs made ``#/$defs/...``)."""
    schemas = {k: _rewrite(v) for k, v in doc["components"]["schemas"].items()}
    return jsonschema.Draft202012Validator({**schemas[name], "$defs": schemas})


def _rewrite(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (v.replace("#/components/schemas/", "#/$defs/") if k == "$ref" else _rewrite(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(v) for v in value]
    return value


@pytest.mark.parametrize("name", ["rng", "batch", "neuron", "dataframe"])
def test_every_example_model_gets_a_valid_document(
    name: str, make_client: Callable[..., FlaskClient], load: Callable[[str], LoadedModel]
) -> None:
    doc = document(make_client(name))
    validate(doc)  # openapi-spec-validator: raises on an invalid document
    spec = load(name).spec
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] == spec.name
    assert doc["info"]["version"] == spec.version
    assert doc["info"]["contact"] == {"name": spec.contact.name, "email": spec.contact.email}
    assert set(doc["paths"]) >= {"/predict", "/status", "/ready", "/info", "/metrics"}
    responses = doc["paths"]["/predict"]["post"]["responses"]
    for status in ERRORS:
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
    assert "401" not in responses  # no server.auth: no token is ever asked for
    assert "security" not in doc


def test_catwalk_rules_are_explicit(make_client: Callable[..., FlaskClient]) -> None:
    """Listed properties required, unlisted rejected, nullable a null type, as enforced."""
    doc = document(make_client("rng"))
    schemas = doc["components"]["schemas"]
    input_schema = schemas["Input"]
    assert input_schema["required"] == ["seed", "seed_version", "mu", "sigma"]
    assert input_schema["additionalProperties"] is False
    assert input_schema["properties"]["sigma"]["minimum"] == 0
    assert input_schema["properties"]["seed"]["description"] == "Seed for random.seed"
    assert input_schema["properties"]["seed"]["examples"] == [0]
    assert schemas["PredictRequest"]["additionalProperties"] is False
    assert schemas["PredictRequest"]["required"] == ["input"]
    assert schemas["Output"]["required"] == ["score"]
    assert schemas["Output"]["additionalProperties"] is False


def test_the_document_agrees_with_the_server(make_client: Callable[..., FlaskClient]) -> None:
    """What the document accepts the server answers 200; what it rejects, 4xx; responses fit."""
    client = make_client("rng")
    doc = document(client)
    request = as_validator(doc, "PredictRequest")
    response = as_validator(doc, "PredictResponse")
    error = as_validator(doc, "Error")
    good = {"input": {"seed": 1, "seed_version": 2, "mu": 0.5, "sigma": 2}}
    bad = [
        {"input": {"seed": 1, "seed_version": 2, "mu": 0.5}},  # sigma missing
        {"input": {"seed": 1, "seed_version": 2, "mu": 0.5, "sigma": 1, "x": 1}},  # unlisted
        {"input": {"seed": 1, "seed_version": 3, "mu": 0.5, "sigma": 1}},  # enum
        {"inputs": {}},  # unknown envelope field
        {"input": good["input"], "model": {"name": "Other", "version": "0.0.1"}},  # 404
    ]
    assert request.is_valid(good)
    answer = client.post("/predict", json=good)
    assert answer.status_code == 200
    response.validate(answer.get_json())
    for body in bad:
        assert not request.is_valid(body), body
        answer = client.post("/predict", json=body)
        # a model reference that is not this model's is 404; every other mistake is 400
        assert answer.status_code == (404 if "model" in body else 400), body
        error.validate(answer.get_json())


def test_examples_come_from_the_test_data_and_the_schema(
    make_client: Callable[..., FlaskClient], load: Callable[[str], LoadedModel]
) -> None:
    client = make_client("rng")
    doc = document(client)
    content = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    X, y = load("rng").load_test_data()
    assert content["examples"]["test_record"]["value"] == {"input": X[0]}
    ok = doc["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    assert ok["example"]["output"] == y[0]
    answer = client.post("/predict", json=content["examples"]["test_record"]["value"])
    assert answer.status_code == 200
    assert answer.get_json()["output"] == y[0]


def test_schema_examples_are_assembled_and_checked(tmp_path: Path) -> None:
    data = {
        "name": "m",
        "version": "1",
        "contact": {"name": "a", "email": "a@b.c"},
        "schema": {
            "input": {
                "type": "object",
                "properties": {
                    "a": {"type": "integer", "example": 3},
                    "b": {"type": "string", "nullable": True, "example": "x"},
                },
            },
            "output": {"type": "object", "properties": {"c": {"type": "number"}}},
        },
    }
    spec = parse_spec(data, tmp_path)
    assert schema_example(spec.input.openapi) == {"a": 3, "b": "x"}
    doc = openapi_document(spec, examples=[("schema_example", "s", {"a": 3, "b": "x"})], auth=True)
    validate(doc)
    assert doc["components"]["schemas"]["Input"]["properties"]["b"]["type"] == ["string", "null"]
    assert doc["security"] == [{"bearer": []}]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert doc["paths"]["/status"]["get"]["security"] == []
    assert doc["paths"]["/ready"]["get"]["security"] == []
    assert "401" in doc["paths"]["/predict"]["post"]["responses"]
    assert "401" in doc["paths"]["/info"]["get"]["responses"]
    del data["schema"]["input"]["properties"]["a"]["example"]  # type: ignore[index]
    assert schema_example(parse_spec(data, tmp_path).input.openapi) is None


def test_dataframe_models_take_a_record_or_records(
    make_client: Callable[..., FlaskClient],
) -> None:
    client = make_client("dataframe")
    doc = document(client)
    request = as_validator(doc, "PredictRequest")
    response = as_validator(doc, "PredictResponse")
    record = {"x1": 1.0, "x2": 2.0, "x3": 3.0}
    for body in ({"input": record}, {"input": [record, record]}):
        assert request.is_valid(body)
        answer = client.post("/predict", json=body)
        assert answer.status_code == 200, answer.get_json()
        response.validate(answer.get_json())


def test_a_model_whose_test_data_fails_still_gets_a_document(
    load: Callable[[str], LoadedModel],
) -> None:
    model = load("rng")

    def broken() -> Any:
        raise RuntimeError("no data here")

    model.load_test_data = broken  # type: ignore[method-assign]
    client = create_app(model, ServerSettings()).test_client()
    doc = document(client)
    validate(doc)
    examples = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert list(examples["examples"]) == ["schema_example"]  # from rng's example keywords


def test_auth_shows_in_the_document(load: Callable[[str], LoadedModel], tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("secret-token\n")
    tokens.chmod(0o600)
    settings = ServerSettings(auth=AuthSettings(tokens_file=tokens))
    client = create_app(load("rng"), settings).test_client()
    assert client.get("/openapi.json").status_code == 401
    response = client.get("/openapi.json", headers={"Authorization": "Bearer secret-token"})
    doc = response.get_json()
    validate(doc)
    assert doc["security"] == [{"bearer": []}]
