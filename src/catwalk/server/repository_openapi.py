"""A model repository's OpenAPI document: every model's own schema, each on its own paths.

Each model's document is built as for one model (:func:`~catwalk.server.openapi.
openapi_document` and :func:`~catwalk.server.v2_openapi.add_v2`), then folded into one: its
schemas that depend on the model (``Input``, ``Output``, ``ModelRef``, ``PredictRequest``,
``PredictResponse``, ``V2InferenceRequest``) are renamed ``<name>_<version>.<Schema>``, its
``POST /predict`` becomes ``POST /models/{name}/versions/{version}/predict`` (and
``/models/{name}/predict`` for its name's default version, ``/predict`` for the repository's
default), and its ``/v2/models/{model_name}...`` paths are written with its name and version.
The paths every server has (``/status``, ``/ready``, ``/metrics``...) appear once.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any
from urllib.parse import quote

from catwalk import __version__
from catwalk.repository.discover import ModelEntry
from catwalk.repository.routing import Routing
from catwalk.server.openapi import example_inputs, openapi_document
from catwalk.server.repository_routes import Served
from catwalk.server.v2_openapi import add_v2

_REF = "#/components/schemas/"
#: The schemas of a model's document that depend on the model.
OWN = ("Input", "Output", "ModelRef", "PredictRequest", "PredictResponse", "V2InferenceRequest")
_V2_MODEL = "/v2/models/{model_name}"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def component_key(entry: ModelEntry) -> str:
    """``scale_1.10``: a model's prefix in component names (OpenAPI allows ``[A-Za-z0-9._-]``)."""
    return _UNSAFE.sub("_", f"{entry.name}_{entry.version}")


def repository_document(
    routing: Routing, served: dict[str, Served], log: logging.Logger, *, auth: bool
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a server answering for every model of ``routing``."""
    document: dict[str, Any] | None = None
    for entry in routing.entries:
        one = served[entry.ref]
        examples, output = example_inputs(one.model, log)
        own = openapi_document(entry.spec, examples=examples, example_output=output, auth=auth)
        add_v2(own, one.predictor, examples, auth=auth)
        if document is None:
            document = _common(own, routing)
        _fold(document, own, entry, routing)
    assert document is not None  # a repository has at least one model
    return document


def _common(first: dict[str, Any], routing: Routing) -> dict[str, Any]:
    """The document's frame: what every model's document has alike, taken from the first."""
    document = copy.deepcopy(first)
    schemas = document["components"]["schemas"]
    for name in OWN:
        schemas.pop(name, None)
    document["paths"] = {
        path: item
        for path, item in document["paths"].items()
        if path != "/predict" and not path.startswith(_V2_MODEL)
    }
    listed = ", ".join(f"{entry.name} {entry.version}" for entry in routing.entries)
    document["info"] = {
        "title": f"catwalk model repository ({routing.repository.root.name})",
        "version": __version__,
        "description": f"Models: {listed}. Served by catwalk {__version__}. Errors are JSON: "
        '`{"correlation_id": ..., "output": {"message": ...}}`; each answer names its model '
        "in the X-Catwalk-Model header (name@version).",
    }
    document["paths"]["/models"] = {
        "get": {
            "operationId": "models",
            "summary": "The repository index: each model, its default version, its traffic.",
            "responses": {
                "200": {
                    "description": "The models.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return document


def _fold(
    document: dict[str, Any], own: dict[str, Any], entry: ModelEntry, routing: Routing
) -> None:
    """Add one model's paths and schemas to ``document``, renamed to its own."""
    key = component_key(entry)
    op_key = key.replace(".", "_").replace("-", "_")
    own = _renamed(own, {_REF + name: f"{_REF}{key}.{name}" for name in OWN})
    schemas = document["components"]["schemas"]
    for name in OWN:
        schemas[f"{key}.{name}"] = own["components"]["schemas"][name]
    model_ref = schemas[f"{key}.ModelRef"]
    model_ref["required"] = ["name"]
    model_ref["description"] = (
        "The model this request is for (a name alone: its default version); a model not "
        "loaded gets 404."
    )
    name, version = quote(entry.name, safe=""), quote(entry.version, safe="")
    is_default = routing.defaults.get(entry.name) is entry
    predict = own["paths"]["/predict"]["post"]
    paths = document["paths"]
    routes = [(f"/models/{name}/versions/{version}/predict", f"predict_{op_key}")]
    if is_default:
        routes.append((f"/models/{name}/predict", f"predict_{op_key}_default"))
        if routing.default_name == entry.name:
            routes.append(("/predict", "predict"))
    for path, operation_id in routes:
        paths[path] = {"post": {**predict, "operationId": operation_id}}
    for path, item in own["paths"].items():
        if not path.startswith(_V2_MODEL):
            continue
        if "{model_version}" not in path and not is_default:
            continue  # the name's paths answer for its default version
        concrete = path.replace("{model_name}", name).replace("{model_version}", version)
        paths[concrete] = {
            method: {
                **{k: v for k, v in operation.items() if k != "parameters"},
                "operationId": f"{operation['operationId']}_{op_key}",
            }
            for method, operation in item.items()
        }


def _renamed(value: Any, refs: dict[str, str]) -> Any:
    """``value`` with every ``$ref`` found in ``refs`` replaced."""
    if isinstance(value, dict):
        return {
            k: refs.get(v, v) if k == "$ref" and isinstance(v, str) else _renamed(v, refs)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_renamed(item, refs) for item in value]
    return value
