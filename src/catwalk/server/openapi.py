"""The server's OpenAPI 3.1 document, generated from the model's own schema (``GET /openapi.json``).

:func:`openapi_document` is pure: a :class:`~catwalk.spec.ModelSpec` (plus examples and whether
bearer tokens are required) in, a JSON-ready dict out. The model's ``schema.input`` and
``schema.output`` are converted by :func:`catwalk.schema.to_json_schema`, the same conversion
the validators compile, so catwalk's rules are explicit in the document: every listed property
is in ``required`` unless the schema gives its own list, and ``additionalProperties`` is
``false`` unless the schema allows more. OpenAPI 3.1's schemas are JSON Schema (2020-12), of
which that conversion's draft 7 output is a subset; a client generator or a fuzzer
(schemathesis, in the tests) therefore reads exactly the contract the server enforces.

:func:`example_inputs` collects the request examples: the model's first test record (known to
give a 200) and one assembled from the schema's ``example`` keywords; only examples that pass
the input schema are used.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from catwalk import __version__
from catwalk.correlation import MAX_CORRELATION_ID
from catwalk.errors import CatwalkError
from catwalk.model import LoadedModel
from catwalk.normalize import to_json
from catwalk.schema import to_json_schema
from catwalk.spec import ModelSpec

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_REF = "#/components/schemas/"
# What a client's correlation_id may not contain (envelope.correlation_id_problem).
_NO_CONTROLS = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
_EXAMPLE_ID = "6f1c2a9e-3b4d-4e5f-8a6b-7c8d9e0f1a2b"

# Error statuses of POST /predict, and what each means.
_PREDICT_ERRORS = {
    "400": "The body is not JSON, the envelope is malformed, or the input fails the schema.",
    "401": "A bearer token is required (server.auth) and none, or a wrong one, was sent.",
    "404": "The envelope names another model (name or version) than the one served.",
    "413": "The body is larger than server.max_body_size.",
    "429": "Production mode: too many connections from this client (max_connections_per_client).",
    "500": "The model raised, or its output fails the output schema or is not JSON.",
    "502": "Production mode: the model server (gunicorn) is not answering.",
    "504": "Production mode: the model did not answer within server.timeout.",
}


def convert(openapi_schema: dict[str, Any], side: str) -> dict[str, Any]:
    """A model schema (already checked by the spec) as the document's JSON Schema."""
    problems: list[str] = []
    converted = to_json_schema(openapi_schema, f"schema.{side}", problems, annotations=True)
    if problems:  # cannot happen for a loaded spec; never serve a half-converted contract
        raise CatwalkError("; ".join(problems))
    return converted


def openapi_document(
    spec: ModelSpec,
    *,
    examples: Sequence[tuple[str, str, Any]] = (),
    example_output: Any = None,
    auth: bool = False,
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a server answering for ``spec``.

    ``examples``: ``(key, summary, input)`` request examples, the first one used by "Try it
    out"; ``example_output``: the output shown in the 200 example; ``auth``: the server
    requires ``Authorization: Bearer <token>`` on every endpoint but /status and /ready.
    """
    input_schema = convert(spec.input.openapi, "input")
    output_schema = convert(spec.output.openapi, "output")
    if spec.io_type == "PANDAS_DATA_FRAME" and not spec.input.is_batch:
        # A DataFrame model with a one-record schema also takes a list of records (one record
        # out per record in).
        input_schema = _record_or_records(input_schema)
    if spec.io_type == "PANDAS_DATA_FRAME" and not spec.output.is_batch:
        output_schema = _record_or_records(output_schema)
    model_ref = {
        "type": "object",
        "description": "The model this request is for; another name or version gets 404.",
        "properties": {
            "name": {"type": "string", "const": spec.name},
            "version": {"type": "string", "const": spec.version},
        },
        "required": ["name", "version"],
        "additionalProperties": False,
    }
    correlation_id = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_CORRELATION_ID,
        "pattern": _NO_CONTROLS,
        "description": "Echoed in the response and logged; generated when absent.",
    }
    extra_data = {
        "type": "object",
        "additionalProperties": True,
        "description": "Echoed untouched; the model never sees it.",
    }
    schemas: dict[str, Any] = {
        "Input": input_schema,
        "Output": output_schema,
        "ModelRef": model_ref,
        "PredictRequest": {
            "type": "object",
            "properties": {
                "correlation_id": correlation_id,
                "model": {"$ref": _REF + "ModelRef"},
                "input": {"$ref": _REF + "Input"},
                "extra_data": extra_data,
            },
            "required": ["input"],
            "additionalProperties": False,
        },
        "PredictResponse": {
            "type": "object",
            "properties": {
                "correlation_id": {"type": "string"},
                "model": {"$ref": _REF + "ModelRef"},
                "input": {"$ref": _REF + "Input"},
                "extra_data": {"type": "object"},
                "output": {"$ref": _REF + "Output"},
            },
            "required": ["correlation_id", "model", "input", "output"],
            "additionalProperties": False,
        },
        "Error": {
            "type": "object",
            "description": "Every error, whoever answers it (the app, gunicorn or nginx).",
            "properties": {
                "correlation_id": {"type": ["string", "null"]},
                "output": {
                    "type": "object",
                    "properties": {"message": {"type": "string"}},
                    "required": ["message"],
                    "additionalProperties": False,
                },
            },
            "required": ["correlation_id", "output"],
            "additionalProperties": False,
        },
        "Status": {
            "type": "object",
            "properties": {"status": {"type": "string", "const": "ok"}},
            "required": ["status"],
            "additionalProperties": False,
        },
        "Ready": {
            "type": "object",
            "properties": {"status": {"type": "string", "const": "ready"}},
            "required": ["status"],
            "additionalProperties": False,
        },
    }
    ref = {"name": spec.name, "version": spec.version}
    request_examples = {
        key: {"summary": summary, "value": {"input": value}} for key, summary, value in examples
    }
    predict_ok: dict[str, Any] = {"schema": {"$ref": _REF + "PredictResponse"}}
    if examples and example_output is not None:
        predict_ok["example"] = {
            "correlation_id": _EXAMPLE_ID,
            "model": ref,
            "input": examples[0][2],
            "output": example_output,
        }
    request_body: dict[str, Any] = {"schema": {"$ref": _REF + "PredictRequest"}}
    if request_examples:
        request_body["examples"] = request_examples

    predict_responses: dict[str, Any] = {
        "200": {"description": "The prediction, in the envelope.", "content": {JSON: predict_ok}}
    }
    for status, text in _PREDICT_ERRORS.items():
        if status == "401" and not auth:
            continue
        predict_responses[status] = _error(text)
    info: dict[str, Any] = {
        "title": spec.name,
        "version": spec.version,
        "contact": {"name": spec.contact.name, "email": spec.contact.email},
        "description": (spec.description + "\n\n" if spec.description else "")
        + f"Served by catwalk {__version__}. Errors are JSON: "
        '`{"correlation_id": ..., "output": {"message": ...}}`.',
    }
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "paths": {
            "/predict": {
                "post": {
                    "operationId": "predict",
                    "summary": f"Predict with {spec.name} {spec.version}",
                    "requestBody": {"required": True, "content": {JSON: request_body}},
                    "responses": predict_responses,
                }
            },
            "/status": {
                "get": _get(
                    "status",
                    "Liveness: 200 while the server runs (never requires a token).",
                    {"200": _json("Alive.", "Status")},
                    public=True,
                )
            },
            "/ready": {
                "get": _get(
                    "ready",
                    "Readiness: 200 when the model is loaded and the server takes requests; "
                    "503 while starting or from the moment a graceful stop begins.",
                    {"200": _json("Ready.", "Ready"), "503": _error("Not ready.")},
                    public=True,
                )
            },
            "/info": {
                "get": _get(
                    "info",
                    "The model's model.yml as JSON.",
                    {"200": {"description": "model.yml.", "content": {JSON: {"schema": {}}}}},
                    auth=auth,
                )
            },
            "/metrics": {
                "get": _get(
                    "metrics",
                    "Prometheus metrics (text format), summed over every worker.",
                    {
                        "200": {
                            "description": "Prometheus text exposition format 0.0.4.",
                            "content": {METRICS_TYPE: {"schema": {"type": "string"}}},
                        }
                    },
                    auth=auth,
                )
            },
            "/openapi.json": {
                "get": _get(
                    "openapi",
                    "This document.",
                    {"200": {"description": "OpenAPI 3.1.", "content": {JSON: {"schema": {}}}}},
                    auth=auth,
                )
            },
        },
        "components": {"schemas": schemas},
    }
    if auth:
        document["components"]["securitySchemes"] = {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "A token from the server's tokens file (server.auth).",
            }
        }
        document["security"] = [{"bearer": []}]
    return document


def _record_or_records(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "array", "items": schema, "minItems": 1}]}


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": {"$ref": _REF + schema}}}}


def _error(description: str) -> dict[str, Any]:
    return _json(description, "Error")


def _get(
    operation: str,
    summary: str,
    responses: dict[str, Any],
    *,
    public: bool = False,
    auth: bool = False,
) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": operation, "summary": summary, "responses": responses}
    if public:
        out["security"] = []
    elif auth:
        responses["401"] = _error(_PREDICT_ERRORS["401"])
    return out


def schema_example(schema: dict[str, Any]) -> Any:
    """A value assembled from the OpenAPI schema's ``example`` keywords (None if incomplete)."""
    if "example" in schema:
        return schema["example"]
    if schema.get("type") == "object" and isinstance(schema.get("properties"), dict):
        out = {}
        props: dict[str, Any] = schema["properties"]
        required = schema.get("required", list(props))
        for name, sub in props.items():
            value = schema_example(sub) if isinstance(sub, dict) else None
            if value is None:
                if name in required:
                    return None
                continue
            out[name] = value
        return out
    if schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        item = schema_example(schema["items"])
        return None if item is None else [item]
    return None


def example_inputs(
    model: LoadedModel, log: logging.Logger
) -> tuple[list[tuple[str, str, Any]], Any]:
    """Request examples ``(key, summary, input)`` for the document, and the first one's output.

    The first test record comes first: its output is known. A model whose ``load_test_data``
    fails still gets a document (the failure is logged at WARNING).
    """
    found: list[tuple[str, str, Any]] = []
    output = None
    spec = model.spec
    try:
        X, y = model.load_test_data()
        xs, ys = to_json(X, "X"), to_json(y, "y")
        if isinstance(xs, list) and xs and isinstance(ys, list) and ys:
            one, expected = (xs[:1], ys[:1]) if spec.input.is_batch else (xs[0], ys[0])
            if not model.input_errors(one):
                found.append(("test_record", "The model's first test record", one))
                output = expected
    except Exception as exc:  # the model's own code: any failure only loses the example
        log.warning("openapi: no test-record example (load_test_data: %s)", exc)
    from_schema = schema_example(spec.input.openapi)
    usable = from_schema is not None and not model.input_errors(from_schema)
    if usable and (not found or found[0][2] != from_schema):
        found.append(("schema_example", "Built from the schema's example keywords", from_schema))
    return found, output
