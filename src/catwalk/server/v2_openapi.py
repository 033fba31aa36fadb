"""The Open Inference Protocol's routes in ``/openapi.json``, with the model's own tensors.

:func:`add_v2` extends the document of :mod:`catwalk.server.openapi`. The inference request's
schema lists the model's input tensors in order (``prefixItems``), each with its name and
datatype, and its data items carry the field's own schema: a client generator or a fuzzer
(schemathesis, in the tests) reads the contract that the server enforces, for the JSON form
of the request. The binary tensor data extension (``Inference-Header-Content-Length``) is
described in words: it is not expressible in OpenAPI.
"""

from __future__ import annotations

from typing import Any

import orjson

from catwalk.correlation import MAX_CORRELATION_ID
from catwalk.protocol.tensors import DATATYPES, INT_RANGES, Tensor, model_sides
from catwalk.server.envelope import Predictor
from catwalk.server.openapi import JSON, convert
from catwalk.server.v2_routes import EXTENSIONS

_REF = "#/components/schemas/"
_NO_CONTROLS = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
_INFER_ERRORS = {
    "400": "The request is not an inference request, a tensor is missing, unknown, of a "
    "datatype that does not convert losslessly or of the wrong shape, or a record fails the "
    "input schema (the message names the tensor or the record's field).",
    "401": "A bearer token is required (server.auth) and none, or a wrong one, was sent.",
    "404": "Another model name or version than the one served.",
    "413": "The body (binary tensor data included) is larger than server.max_body_size.",
    "415": "A Content-Encoding other than gzip, deflate or identity.",
    "500": "The model raised, or its output fails the output schema or its tensors.",
    "504": "The model did not answer within server.timeout.",
}


def add_v2(
    document: dict[str, Any],
    predictor: Predictor,
    examples: list[tuple[str, str, Any]],
    *,
    auth: bool,
) -> None:
    """Add the ``/v2`` paths and their schemas to ``document`` (from openapi_document)."""
    spec = predictor.model.spec
    inputs, outputs, _ = model_sides(spec)
    input_fields = _field_schemas(spec.input.openapi, "input", inputs.fields, spec.input.is_batch)
    schemas = document["components"]["schemas"]
    schemas["V2Error"] = {
        "type": "object",
        "description": "The Open Inference Protocol's error.",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
    }
    schemas["V2InferenceRequest"] = _request_schema(inputs.tensors, input_fields, outputs.tensors)
    schemas["V2InferenceResponse"] = _response_schema()
    schemas["V2ModelMetadata"] = {
        "type": "object",
        "required": ["name", "platform", "inputs", "outputs"],
    }
    schemas["V2ServerMetadata"] = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"enum": list(EXTENSIONS)}},
        },
        "required": ["name", "version", "extensions"],
    }
    for name in ("Live", "Ready"):
        key = name.lower()
        schemas[f"V2{name}"] = {
            "type": "object",
            "properties": {key: {"type": "boolean"}},
            "required": [key],
        }
    name_param = {
        "name": "model_name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [spec.name]},
    }
    version_param = {
        "name": "model_version",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": [spec.version]},
    }
    request_example = _request_example(inputs.tensors, inputs.fields, examples)
    found = {"404": _error(_INFER_ERRORS["404"])}
    documented = document["paths"]
    documented["/v2"] = {
        "get": _get("v2_server_metadata", "Server metadata.", "V2ServerMetadata", auth)
    }
    documented["/v2/health/live"] = {
        "get": _get("v2_live", "Liveness (never requires a token).", "V2Live", False, public=True)
    }
    ready_get = _get(
        "v2_ready",
        "Readiness: 200 once the model is loaded, 503 while starting or draining.",
        "V2Ready",
        False,
        public=True,
    )
    ready_get["responses"]["503"] = _error("Not ready.")
    documented["/v2/health/ready"] = {"get": ready_get}
    for suffix, params in (
        ("", [name_param]),
        ("/versions/{model_version}", [name_param, version_param]),
    ):
        base = "/v2/models/{model_name}" + suffix
        tag = "_version" if suffix else ""
        meta = _get(
            f"v2_model_metadata{tag}",
            "Model metadata: the tensors of model.yml.",
            "V2ModelMetadata",
            auth,
        )
        meta["responses"].update(found)
        meta["parameters"] = params
        documented[base] = {"get": meta}
        model_ready = _get(f"v2_model_ready{tag}", "Model readiness.", "V2Ready", auth)
        model_ready["responses"].update({**found, "503": _error("Not ready.")})
        model_ready["parameters"] = params
        documented[base + "/ready"] = {"get": model_ready}
        responses: dict[str, Any] = {
            "200": {
                "description": "The output tensors (JSON data, or binary data after the JSON "
                "when asked: application/octet-stream with Inference-Header-Content-Length).",
                "content": {JSON: {"schema": {"$ref": _REF + "V2InferenceResponse"}}},
            }
        }
        for status, text in _INFER_ERRORS.items():
            if status != "401" or auth:
                responses[status] = _error(text)
        body: dict[str, Any] = {"schema": {"$ref": _REF + "V2InferenceRequest"}}
        if request_example is not None:
            body["example"] = request_example
        documented[base + "/infer"] = {
            "post": {
                "operationId": f"v2_infer{tag}",
                "summary": f"Infer with {spec.name} {spec.version} (Open Inference Protocol)",
                "description": "N records as tensors of first dimension N (docs/protocol.md). "
                "The binary tensor data extension is supported: the JSON request followed by "
                "the tensors' bytes, Inference-Header-Content-Length giving the JSON's length.",
                "parameters": params,
                "requestBody": {"required": True, "content": {JSON: body}},
                "responses": responses,
            }
        }


def _field_schemas(
    openapi: dict[str, Any], side: str, fields: bool, items: bool
) -> dict[str | None, Any]:
    """Each tensor's element schema, from the converted schema of its field."""
    converted = convert(openapi, side)
    record = converted.get("items", {}) if items else converted
    if not fields:
        return {None: record}
    props: dict[str | None, Any] = dict(record.get("properties", {}))
    return props


def _element_schema(tensor: Tensor, field_schema: Any) -> dict[str, Any]:
    """The field's own schema for one element, bounded by what an integer datatype holds."""
    if tensor.kind == "json":
        return {"type": "string", "contentMediaType": JSON}
    if not isinstance(field_schema, dict):
        return {}
    element: dict[str, Any] = field_schema
    if tensor.width is not None:
        item = field_schema.get("items", {})
        element = item if isinstance(item, dict) else {}
    if tensor.datatype not in INT_RANGES:
        return element
    low, high = INT_RANGES[tensor.datatype]
    bounded = dict(element)
    bounded["minimum"] = max(low, bounded.get("minimum", low))
    bounded["maximum"] = min(high, bounded.get("maximum", high))
    return bounded


def _request_schema(
    tensors: tuple[Tensor, ...], fields: dict[str | None, Any], outputs: tuple[Tensor, ...]
) -> dict[str, Any]:
    listed = []
    for tensor in tensors:
        count = tensor.width or 1
        listed.append(
            {
                "type": "object",
                "properties": {
                    "name": {"const": tensor.name},
                    "datatype": {"const": tensor.datatype},
                    "shape": {
                        "type": "array",
                        "prefixItems": [{"const": 1}]
                        + ([{"const": count}] if tensor.width else []),
                        "items": False,
                        "minItems": 1 if tensor.width is None else 2,
                    },
                    "parameters": {"type": "object"},
                    "data": {
                        "type": "array",
                        "items": _element_schema(tensor, fields.get(tensor.field)),
                        "minItems": count,
                        "maxItems": count,
                    },
                },
                "required": ["name", "datatype", "shape", "data"],
                "additionalProperties": False,
            }
        )
    return {
        "type": "object",
        "description": "One record per first-dimension index; datatypes that convert "
        f"losslessly are accepted too (of {', '.join(DATATYPES)}).",
        "properties": {
            "id": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_CORRELATION_ID,
                "pattern": _NO_CONTROLS,
            },
            "parameters": {"type": "object"},
            "inputs": {
                "type": "array",
                "prefixItems": listed,
                "items": False,
                "minItems": len(listed),
            },
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"enum": [t.name for t in outputs]},
                        "parameters": {"type": "object"},
                    },
                    "required": ["name"],
                    "additionalProperties": False,
                },
                "maxItems": 1,
            },
        },
        "required": ["inputs"],
        "additionalProperties": False,
    }


def _response_schema() -> dict[str, Any]:
    tensor = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "parameters": {"type": "object"},
            "data": {"type": "array"},
        },
        "required": ["name", "datatype", "shape"],
    }
    return {
        "type": "object",
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": tensor},
        },
        "required": ["model_name", "id", "outputs"],
    }


def _request_example(
    tensors: tuple[Tensor, ...], fields: bool, examples: list[tuple[str, str, Any]]
) -> dict[str, Any] | None:
    """The first request example of /predict as one record of tensors (None: none usable)."""
    if not examples:
        return None
    value = examples[0][2]
    records = value if isinstance(value, list) else [value]
    if not records:
        return None
    inputs = []
    for tensor in tensors:
        column = [r.get(tensor.field) if fields and isinstance(r, dict) else r for r in records]
        if any(v is None for v in column):
            if tensor.required:
                return None
            continue
        if tensor.kind == "json":
            data: list[Any] = [orjson.dumps(v).decode() for v in column]
        elif tensor.width:
            data = [x for row in column for x in (row or ())]
        else:
            data = column
        shape = [len(records)] if tensor.width is None else [len(records), tensor.width]
        inputs.append(
            {"name": tensor.name, "datatype": tensor.datatype, "shape": shape, "data": data}
        )
    return {"inputs": inputs}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": {"$ref": _REF + "V2Error"}}}}


def _get(
    operation: str, summary: str, schema: str, auth: bool, *, public: bool = False
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {"description": summary, "content": {JSON: {"schema": {"$ref": _REF + schema}}}}
    }
    out: dict[str, Any] = {"operationId": operation, "summary": summary, "responses": responses}
    if public:
        out["security"] = []
    elif auth:
        responses["401"] = _error(_INFER_ERRORS["401"])
    return out
