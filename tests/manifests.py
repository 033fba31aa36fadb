"""Strict offline validation of deploy-prep's manifests (kubernetes.yml, kserve.yml), shared by
tests/deploy and the Docker tests (``from manifests import ...``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

#: A current Kubernetes release, and the newest schemas kubernetes-validate ships.
VERSIONS = ("1.34.0", kubernetes_validate.latest_version())


def validate_strictly(text: str) -> None:
    for doc in yaml.safe_load_all(text):
        if doc:
            for version in VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)


CRD = (
    Path(__file__).resolve().parent / "data" / "kserve" / "serving.kserve.io_inferenceservices.yaml"
)
# metadata.name of an InferenceService: a DNS-1035 label (KServe's webhook checks it).
NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def strict(schema: Any) -> Any:
    """The CRD's schema with unknown fields refused where Kubernetes refuses them."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items() if k != "properties"}
        if "properties" in schema:
            out["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
            if not schema.get("x-kubernetes-preserve-unknown-fields"):
                out.setdefault("additionalProperties", False)
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


def kserve_validator() -> jsonschema.Draft7Validator:
    crd = yaml.safe_load(CRD.read_text())
    assert crd["spec"]["group"] == "serving.kserve.io"
    [version] = [v for v in crd["spec"]["versions"] if v["name"] == "v1beta1"]
    schema = strict(version["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema)


def check(validator: jsonschema.Draft7Validator, text: str) -> dict[str, Any]:
    [doc] = [d for d in yaml.safe_load_all(text) if d]
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1" and doc["kind"] == "InferenceService"
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]
    assert not errors, errors
    assert NAME.fullmatch(doc["metadata"]["name"]) and len(doc["metadata"]["name"]) <= 63
    return doc
