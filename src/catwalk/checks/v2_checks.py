"""The Open Inference Protocol checks of ``test-server`` and ``test-image``.

After the ``/predict`` checks (:mod:`catwalk.checks.server_checks`), the same server's ``/v2``
surface: liveness and readiness, server metadata (the binary tensor data extension), model
metadata equal to the tensors model.yml maps to (docs/protocol.md), an infer of the whole test
data with JSON tensors and one with binary tensors (both ways) whose outputs equal ``y`` like
``/predict``'s, and a 404 for another model. The requests are built here from the metadata
the server announces, as a protocol client would: only the byte layouts are shared with the
server (:mod:`catwalk.protocol.binary`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
import requests

from catwalk.checks.model_checks import TestData
from catwalk.checks.report import Report
from catwalk.checks.server_reach import request_failure
from catwalk.model import LoadedModel
from catwalk.normalize import first_difference
from catwalk.protocol import binary
from catwalk.protocol.tensors import Side, model_sides

HEADER_LENGTH = "Inference-Header-Content-Length"


class _Failed(Exception):
    pass


def check_v2(
    base_url: str,
    model: LoadedModel,
    data: TestData,
    report: Report,
    session: requests.Session,
    *,
    verify: bool | str,
    timeout: float,
    tolerance: float,
    versioned: bool = False,
) -> None:
    """One report line per check of the ``/v2`` endpoints (``session`` carries any token);
    ``versioned``: the model's paths name its version (a repository serves several)."""
    checks = _V2Checks(base_url, model, data, session, verify, timeout, tolerance, versioned)
    for name, check in checks.checks():
        try:
            report.ok(name, check())
        except requests.RequestException as exc:
            report.fail(name, request_failure(exc, timeout))
        except _Failed as failed:
            report.fail(name, str(failed))


@dataclass
class _V2Checks:
    base_url: str
    model: LoadedModel
    data: TestData
    session: requests.Session
    verify: bool | str
    timeout: float
    tolerance: float
    versioned: bool = False

    def __post_init__(self) -> None:
        self.base = self.base_url.rstrip("/")
        model, data = self.model, self.data
        self.spec = model.spec
        self.path = f"/v2/models/{quote(self.spec.name, safe='')}"
        if self.versioned:
            self.path += f"/versions/{quote(self.spec.version, safe='')}"
        self.inputs, self.outputs, whole = model_sides(self.spec)
        self.records = data.inputs[0] if data.batch else data.inputs
        expected = data.outputs[0] if data.batch else data.outputs
        if whole and not (self.spec.output.is_batch or model.is_dataframe):
            expected = [expected]
        self.expected = expected

    def checks(self) -> list[tuple[str, Callable[[], str]]]:
        return [
            ("GET /v2/health/live", lambda: self._flag("/v2/health/live", "live")),
            ("GET /v2/health/ready", lambda: self._flag("/v2/health/ready", "ready")),
            ("GET /v2: server metadata", self.server_metadata),
            (f"GET {self.path}: model metadata", self.model_metadata),
            (f"POST {self.path}/infer: test data, JSON tensors", lambda: self.infer(False)),
            (f"POST {self.path}/infer: test data, binary tensors", lambda: self.infer(True)),
            ("POST /v2/models/<other>/infer -> 404", self.other_model),
        ]

    def _json(self, response: requests.Response, status: int) -> Any:
        if response.status_code != status:
            raise _Failed(
                f"expected HTTP {status}, got {response.status_code}: {_snippet(response)}"
            )
        try:
            return response.json()
        except ValueError:
            raise _Failed(f"body is not JSON: {_snippet(response)}") from None

    def _get(self, path: str) -> requests.Response:
        return self.session.get(self.base + path, timeout=self.timeout, verify=self.verify)

    def _flag(self, path: str, key: str) -> str:
        body = self._json(self._get(path), 200)
        if body != {key: True}:
            raise _Failed(f"expected {{{key!r}: true}}, got {body!r:.200}")
        return f"{{{key!r}: true}}"

    def server_metadata(self) -> str:
        body = self._json(self._get("/v2"), 200)
        if "binary_tensor_data" not in (body.get("extensions") or []):
            raise _Failed(f"extensions do not list binary_tensor_data: {body!r:.200}")
        return f"{body.get('name')} {body.get('version')}: {', '.join(body['extensions'])}"

    def model_metadata(self) -> str:
        body = self._json(self._get(self.path), 200)
        expected = {
            "name": self.spec.name,
            "inputs": self.inputs.metadata(),
            "outputs": self.outputs.metadata(),
        }
        got = {key: body.get(key) for key in expected}
        if got != expected:
            raise _Failed(f"differs from model.yml's tensors: expected {expected}, got {got}")
        if self.spec.version not in (body.get("versions") or []):
            raise _Failed(f"versions {body.get('versions')!r} do not list {self.spec.version}")
        return ", ".join(f"{t.name} {t.datatype}{t.shape}" for t in self.inputs.tensors)

    def infer(self, as_binary: bool) -> str:
        body, header_length = _request(self.inputs, self.records, as_binary)
        headers = {"Content-Type": "application/json"}
        if header_length is not None:
            headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: header_length}
        response = self.session.post(
            self.base + self.path + "/infer",
            data=body,
            headers=headers,
            timeout=self.timeout,
            verify=self.verify,
        )
        if response.status_code != 200:
            raise _Failed(f"expected HTTP 200, got {response.status_code}: {_snippet(response)}")
        got = _records(self.outputs, response)
        diff = first_difference(self.expected, got, self.tolerance, "output")
        if diff:
            raise _Failed(diff)
        return f"{len(self.records)} record(s) in one request: outputs equal y, as /predict's"

    def other_model(self) -> str:
        response = self.session.post(
            f"{self.base}/v2/models/{quote(self.spec.name, safe='')}-other/infer",
            data=b'{"inputs": []}',
            headers={"Content-Type": "application/json"},
            timeout=self.timeout,
            verify=self.verify,
        )
        body = self._json(response, 404)
        if not isinstance(body, dict) or not isinstance(body.get("error"), str):
            raise _Failed(f'error body has no "error": {body!r:.200}')
        return str(body["error"])


def _request(side: Side, records: list[Any], as_binary: bool) -> tuple[bytes, str | None]:
    """The inference request of ``records`` (binary data for every tensor when asked)."""
    inputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for tensor in side.tensors:
        if side.fields and not all(tensor.field in r for r in records):
            continue  # an optional field the test data leaves out
        column = [r[tensor.field] for r in records] if side.fields else list(records)
        if tensor.width is not None:
            column = [x for row in column for x in row]
        if tensor.kind == "json":
            column = [orjson.dumps(v).decode() for v in column]
        shape = [len(records)] if tensor.width is None else [len(records), tensor.width]
        item: dict[str, Any] = {"name": tensor.name, "shape": shape, "datatype": tensor.datatype}
        if as_binary:
            if tensor.datatype == "BYTES":
                column = [v.encode("utf-8") for v in column]
            chunk = binary.pack(tensor.datatype, column)
            item["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            item["data"] = column
        inputs.append(item)
    request: dict[str, Any] = {"inputs": inputs}
    if as_binary:
        request["parameters"] = {"binary_data_output": True}
    header = orjson.dumps(request)
    if not as_binary:
        return header, None
    return header + b"".join(chunks), str(len(header))


def _records(side: Side, response: requests.Response) -> list[Any]:
    """The output records of an inference response (JSON or binary tensors)."""
    content = response.content
    length = response.headers.get(HEADER_LENGTH)
    end = int(length) if length is not None else len(content)
    try:
        head = orjson.loads(content[:end])
    except orjson.JSONDecodeError as exc:
        raise _Failed(f"response is not JSON: {exc}") from None
    offset = end
    columns: dict[str, list[Any]] = {}
    count = 0
    for out in head.get("outputs", []):
        tensor = side.by_name.get(out.get("name"))
        if tensor is None:
            raise _Failed(f"unknown output tensor {out.get('name')!r}")
        shape = out.get("shape") or [0]
        count = shape[0]
        elements = count * (tensor.width or 1)
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            values = binary.unpack(out["datatype"], content[offset : offset + size], elements)
            offset += size
            if out["datatype"] == "BYTES":
                values = [v.decode("utf-8") for v in values]
        else:
            values = out.get("data", [])
        if tensor.kind == "json":
            values = [orjson.loads(v) for v in values]
        if tensor.width is not None:
            k = tensor.width
            values = [values[i * k : i * k + k] for i in range(count)]
        columns[tensor.name] = values
    if not side.fields:
        return columns.get(side.tensors[0].name, [])
    return [{name: column[i] for name, column in columns.items()} for i in range(count)]


def _snippet(response: requests.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return (text[:200] + "...") if len(text) > 200 else (text or "(empty body)")
