"""The /v2 routes in process (the app every server runs), with tritonclient's own encoder.

Requests are built by tritonclient's request builder and responses read by its InferResult,
so both directions of the binary tensor data extension are checked against the client's
code for every tensor mapping (tests/protocol/models/typed); then every way a request can
be wrong gets its 400/404/405/413/415 with the protocol's ``{"error": ...}`` naming the
tensor or field.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clients import EXAMPLES, needs
from flask.testing import FlaskClient

from catwalk.config import ServerSettings
from catwalk.model import load_model
from catwalk.server.app import create_app
from catwalk.spec import load_spec

TYPED = Path(__file__).resolve().parent / "models" / "typed"
INFER = "/v2/models/Typed/infer"
RECORDS = [
    {"count": 1, "small": -2, "ratio": 0.5, "weight": 1.5, "flag": True, "label": "a",
     "vector": [1.0, 2.0, 3.0], "meta": {"k": [1, "x"]}, "maybe": None},
    {"count": 2, "small": 7, "ratio": -1.25, "weight": 0.0, "flag": False, "label": "héllo",
     "vector": [0.0, -1.0, 0.5], "meta": {}, "maybe": 2.5},
]  # fmt: skip
ARRAYS = {
    "count": ("INT64", np.array([1, 2], dtype=np.int64)),
    "small": ("INT32", np.array([-2, 7], dtype=np.int32)),
    "ratio": ("FP64", np.array([0.5, -1.25])),
    "weight": ("FP32", np.array([1.5, 0.0], dtype=np.float32)),
    "flag": ("BOOL", np.array([True, False])),
    "label": ("BYTES", np.array([b"a", "héllo".encode()], dtype=np.object_)),
    "vector": ("FP64", np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]])),
    "meta": ("BYTES", np.array([b'{"k":[1,"x"]}', b"{}"], dtype=np.object_)),
    "maybe": ("BYTES", np.array([b"null", b"2.5"], dtype=np.object_)),
}


@pytest.fixture(scope="module")
def http() -> Any:
    return needs("tritonclient.http")


def client_for(folder: Path, **settings: Any) -> FlaskClient:
    return create_app(load_model(load_spec(folder)), ServerSettings(**settings)).test_client()


@pytest.fixture(scope="module")
def typed() -> FlaskClient:
    return client_for(TYPED)


def build(
    http: Any, arrays: dict[str, Any], binary: bool, **kw: Any
) -> tuple[bytes, dict[str, str]]:
    """A request body and headers exactly as tritonclient's infer() sends them."""
    from tritonclient.http._utils import _get_inference_request

    inputs = []
    for name, (datatype, array) in arrays.items():
        tensor = http.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    options = dict(request_id="", outputs=None, sequence_id=0, sequence_start=False,
                   sequence_end=False, priority=0, timeout=None,
                   custom_parameters=None)  # fmt: skip
    options.update(kw)
    body, json_size = _get_inference_request(inputs=inputs, **options)
    headers = {} if json_size is None else {"Inference-Header-Content-Length": str(json_size)}
    return body, headers


def result(http: Any, response: Any) -> Any:
    assert response.status_code == 200, response.data
    length = response.headers.get("Inference-Header-Content-Length")
    return http.InferResult.from_response_body(
        response.data, header_length=None if length is None else int(length)
    )


@pytest.mark.parametrize("binary", [True, False])
def test_every_mapping_both_ways_with_tritonclients_code(
    http: Any, typed: FlaskClient, binary: bool
) -> None:
    body, headers = build(http, ARRAYS, binary, request_id="req-7")
    if not binary:  # JSON in; outputs still binary (the client's default: binary_data_output)
        assert not headers
    answer = result(http, typed.post(INFER, data=body, headers=headers))
    response = answer.get_response()
    assert response["id"] == "req-7"
    assert response["model_name"] == "Typed" and response["model_version"] == "2.1"
    assert all("binary_data_size" in out["parameters"] for out in response["outputs"])
    assert answer.as_numpy("count").tolist() == [2, 4]
    assert answer.as_numpy("count").dtype == np.int64
    assert answer.as_numpy("small").tolist() == [-2, 7]
    assert answer.as_numpy("ratio").tolist() == [0.5, -1.25]
    assert answer.as_numpy("weight").dtype == np.float32
    assert answer.as_numpy("flag").tolist() == [True, False]
    assert [b.decode() for b in answer.as_numpy("label")] == ["a", "héllo"]
    assert answer.as_numpy("vector").tolist() == [[1.0, 2.0, 3.0], [0.0, -1.0, 0.5]]
    assert [json.loads(b) for b in answer.as_numpy("meta")] == [{"k": [1, "x"]}, {}]
    assert [json.loads(b) for b in answer.as_numpy("maybe")] == [None, 2.5]
    assert answer.as_numpy("note") is None  # optional, and no record has it: not sent


def test_json_outputs_when_asked(http: Any, typed: FlaskClient) -> None:
    outputs = [http.InferRequestedOutput(n, binary_data=False) for n in ("label", "vector", "meta")]
    body, headers = build(http, ARRAYS, True, outputs=outputs)
    response = typed.post(INFER, data=body, headers=headers)
    assert response.headers["Content-Type"] == "application/json"
    assert "Inference-Header-Content-Length" not in response.headers
    outs = response.get_json()["outputs"]
    assert [o["name"] for o in outs] == ["label", "vector", "meta"]
    assert outs[0] == {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["a", "héllo"]}
    assert outs[1]["shape"] == [2, 3] and outs[1]["data"] == [1.0, 2.0, 3.0, 0.0, -1.0, 0.5]
    assert outs[2]["data"] == ['{"k":[1,"x"]}', "{}"]


def test_lossless_datatypes_are_accepted_others_named(http: Any, typed: FlaskClient) -> None:
    widened = {**ARRAYS, "count": ("INT32", np.array([1, 2], dtype=np.int32)),
               "ratio": ("FP32", np.array([0.5, -1.25], dtype=np.float32))}  # fmt: skip
    body, headers = build(http, widened, True)
    assert result(http, typed.post(INFER, data=body, headers=headers)).as_numpy(
        "count"
    ).tolist() == [2, 4]
    for name, datatype, array in (
        ("count", "FP32", np.array([1.0, 2.0], dtype=np.float32)),
        ("ratio", "INT64", np.array([1, 2], dtype=np.int64)),
        ("weight", "FP64", np.array([1.5, 0.0])),
        ("small", "INT64", np.array([1, 2], dtype=np.int64)),
    ):
        body, headers = build(http, {**ARRAYS, name: (datatype, array)}, True)
        response = typed.post(INFER, data=body, headers=headers)
        assert response.status_code == 400
        message = response.get_json()["error"]
        assert message.startswith(f"input tensor {name}: datatype {datatype} does not convert"), (
            message
        )


def error(client: FlaskClient, body: Any, status: int = 400, path: str = "", **kw: Any) -> str:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(path or RNG, data=data, **kw)
    assert response.status_code == status, response.data
    assert response.headers["Content-Type"] == "application/json"
    found = response.get_json()
    assert list(found) == ["error"], found
    return str(found["error"])


def rng_inputs(**changes: Any) -> dict[str, Any]:
    tensors = {
        "seed": {"name": "seed", "shape": [2], "datatype": "INT64", "data": [0, 1]},
        "seed_version": {"name": "seed_version", "shape": [2], "datatype": "INT64", "data": [2, 2]},
        "mu": {"name": "mu", "shape": [2], "datatype": "FP64", "data": [0.0, 1.0]},
        "sigma": {"name": "sigma", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
    }
    for name, change in changes.items():
        if change is None:
            del tensors[name]
        else:
            tensors[name] = {**tensors[name], **change}
    return {"inputs": list(tensors.values())}


@pytest.fixture(scope="module")
def rng() -> FlaskClient:
    return client_for(EXAMPLES / "rng", max_body_size="64k")


RNG = "/v2/models/RNGModel/infer"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json", "body: not valid JSON"),
        ([1], "body: must be a JSON object (an inference request), got array"),
        ({"inputs": []}, "inputs: must be a non-empty array of tensors, got array"),
        ({**rng_inputs(), "extra": 1}, "extra: unknown field (allowed: id, parameters, inputs"),
        (rng_inputs(sigma=None), "inputs: missing tensor sigma (the model's inputs: seed, "),
        (
            {"inputs": [*rng_inputs()["inputs"], {"name": "x"}]},
            "inputs[4]: unknown input tensor 'x'",
        ),
        (rng_inputs(mu={"shape": [3]}), "input tensor mu: data holds 2 elements, the shape says 3"),
        (
            rng_inputs(mu={"shape": [2, 1]}),
            "input tensor mu: shape [2, 1] does not fit; expected [N]",
        ),
        (
            rng_inputs(mu={"shape": [1], "data": [0.0]}),
            "input tensor mu: shape says 1 records, another",
        ),
        (rng_inputs(sigma={"data": [1.0, -1]}), "input[1].sigma: -1 is less than the minimum of 0"),
        (rng_inputs(seed={"data": [0, 1.5]}), "input tensor seed: element 1: 1.5 is not INT64"),
        (rng_inputs(seed={"data": [0, True]}), "input tensor seed: element 1: True is not INT64"),
        (
            rng_inputs(seed={"datatype": "FP64"}),
            "input tensor seed: datatype FP64 does not convert",
        ),
        (rng_inputs(seed={"datatype": "INT8", "data": [0, 300]}), "element 1: 300 is not INT8"),
        (rng_inputs(seed={"data": None}), "input tensor seed: data must be an array, got null"),
        ({**rng_inputs(), "id": "a\nb"}, "id: must not contain control characters"),
        (
            {**rng_inputs(), "outputs": [{"name": "nope"}]},
            "outputs[0]: unknown output tensor 'nope'",
        ),
        (
            {**rng_inputs(), "outputs": [{"name": "score", "parameters": {"classification": 2}}]},
            "output tensor score: parameters.classification is not supported",
        ),
        (
            rng_inputs(mu={"parameters": {"shared_memory_region": "r"}}),
            "input tensor mu: parameters.shared_memory_region: shared memory is not supported",
        ),
        (rng_inputs(mu={"data": [[0.0], [1.0]]}), None),  # nested data is row-major: accepted
    ],
)
def test_bad_requests_are_400s_naming_the_tensor(
    rng: FlaskClient, body: Any, expected: str | None
) -> None:
    if expected is None:
        response = rng.post(RNG, json=body)
        assert response.status_code == 200, response.data
        return
    assert expected in error(rng, body)


def test_an_integral_json_float_is_the_integer_it_equals(rng: FlaskClient) -> None:
    """JSON has one number type (JSON Schema's "integer" admits -696.0): the same answer as
    -696, while 1e300 is still out of INT64's range."""
    as_int = rng.post(RNG, json=rng_inputs(seed={"data": [-696, 3]}))
    as_float = rng.post(RNG, json=rng_inputs(seed={"data": [-696.0, 3.0]}))
    assert as_int.status_code == as_float.status_code == 200, as_float.data
    assert as_float.get_json()["outputs"] == as_int.get_json()["outputs"]
    assert "element 0: " in error(rng, rng_inputs(seed={"data": [1e300, 0]}))


def test_binary_sizes_that_disagree_are_400s(rng: FlaskClient) -> None:
    header = rng_inputs()
    header["inputs"][2] = {"name": "mu", "shape": [2], "datatype": "FP64",
                           "parameters": {"binary_data_size": 16}}  # fmt: skip
    text = json.dumps(header).encode()
    two = np.array([0.0, 1.0]).tobytes()
    ok = rng.post(RNG, data=text + two, headers={"Inference-Header-Content-Length": str(len(text))})
    assert ok.status_code == 200
    cases = [
        (text + two[:8], str(len(text)), "binary_data_size 16 runs past the end of the body"),
        (text + two + b"x", str(len(text)), "binary data: 1 bytes after the last tensor's"),
        (text + two, str(len(text) + 999), "is more than the body's"),
        (text + two, "abc", "Inference-Header-Content-Length: must be a number of bytes"),
        (two, "0", "a raw binary request without the JSON inference header) is not supported"),
    ]
    for body, length, expected in cases:
        message = error(rng, body, headers={"Inference-Header-Content-Length": length})
        assert expected in message, message
    header["inputs"][2]["parameters"]["binary_data_size"] = 8
    header["inputs"][2]["shape"] = [2]
    text = json.dumps(header).encode()
    message = error(
        rng, text + two[:8], headers={"Inference-Header-Content-Length": str(len(text))}
    )
    assert message == "input tensor mu: 8 bytes of binary data, expected 16 (2 x FP64)"


def test_not_finite_binary_numbers_are_refused(rng: FlaskClient) -> None:
    header = rng_inputs()
    header["inputs"][2] = {"name": "mu", "shape": [2], "datatype": "FP64",
                           "parameters": {"binary_data_size": 16}}  # fmt: skip
    text = json.dumps(header).encode()
    body = text + np.array([0.0, np.nan]).tobytes()
    message = error(rng, body, headers={"Inference-Header-Content-Length": str(len(text))})
    assert message == "input tensor mu: element 1 is nan, not a finite number"


def test_other_models_paths_and_methods(rng: FlaskClient) -> None:
    assert "model 'Other' not found" in error(rng, rng_inputs(), 404, "/v2/models/Other/infer")
    assert "model 'RNGModel version 2' not found" in error(
        rng, rng_inputs(), 404, "/v2/models/RNGModel/versions/2/infer"
    )
    assert (
        rng.post("/v2/models/RNGModel/versions/0.0.1/infer", json=rng_inputs()).status_code == 200
    )
    body = {**rng_inputs(), "model_name": "Other"}
    assert "model 'Other' not found" in error(rng, body, 404)
    assert "no such endpoint: POST /v2/nothing" in error(rng, rng_inputs(), 404, "/v2/nothing")
    response = rng.get(RNG)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert response.get_json() == {"error": f"method not allowed: GET {RNG} (allowed: POST)"}
    response = rng.post("/v2/health/live")
    assert response.status_code == 405 and response.headers["Allow"] == "GET, HEAD"


def test_body_limits_count_binary_data_and_decompression(rng: FlaskClient) -> None:
    assert "too large" in error(rng, b"x" * 70_000, 413)
    plain = json.dumps(rng_inputs()).encode()
    ok = rng.post(RNG, data=gzip.compress(plain), headers={"Content-Encoding": "gzip"})
    assert ok.status_code == 200, ok.data
    bomb = gzip.compress(b" " * 2_000_000)
    assert "too large" in error(rng, bomb, 413, headers={"Content-Encoding": "gzip"})
    assert "not supported" in error(rng, plain, 415, headers={"Content-Encoding": "br"})
    assert "not valid gzip data" in error(rng, plain, headers={"Content-Encoding": "gzip"})


def test_metadata_ready_and_openapi(rng: FlaskClient) -> None:
    assert rng.get("/v2/health/ready").get_json() == {"ready": True}
    assert rng.get("/v2/models/RNGModel/ready").get_json() == {"name": "RNGModel", "ready": True}
    document = rng.get("/openapi.json").get_json()
    infer = document["paths"]["/v2/models/{model_name}/infer"]["post"]
    assert infer["parameters"][0]["schema"] == {"type": "string", "enum": ["RNGModel"]}
    request = document["components"]["schemas"]["V2InferenceRequest"]
    tensors = request["properties"]["inputs"]["prefixItems"]
    assert [t["properties"]["name"]["const"] for t in tensors] == [
        "seed",
        "seed_version",
        "mu",
        "sigma",
    ]
    sigma = tensors[3]["properties"]["data"]["items"]
    assert sigma["type"] == "number" and sigma["minimum"] == 0
    example = infer["requestBody"]["content"]["application/json"]["example"]
    assert rng.post(RNG, json=example).status_code == 200


def test_the_id_is_the_correlation_id_in_the_log_and_metrics(
    rng: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="catwalk.server"):
        response = rng.post(RNG, json={**rng_inputs(), "id": "order-17"})
        assert response.get_json()["id"] == "order-17"
        rng.post(
            RNG, json=rng_inputs(sigma={"data": [1.0, -1]}), headers={"X-Correlation-Id": "c-9"}
        )
    lines = [r.getMessage() for r in caplog.records]
    assert any(f"POST {RNG} 200" in line and "correlation_id=order-17" in line for line in lines)
    assert any(f"POST {RNG} 400" in line and "correlation_id=c-9" in line for line in lines)
    metrics = rng.get("/metrics").get_data(as_text=True)
    assert 'catwalk_requests_total{endpoint="/v2/models/infer",status="200"}' in metrics
    assert 'catwalk_requests_total{endpoint="/v2/models/infer",status="400"}' in metrics


def test_draining_turns_v2_readiness_503(rng: FlaskClient) -> None:
    assert rng.get("/v2/health/ready").get_json() == {"ready": True}
    rng.application.readiness.stopping = True  # type: ignore[attr-defined]
    response = rng.get("/v2/health/ready")
    assert response.status_code == 503
    assert response.get_json()["ready"] is False
    assert "stopping" in response.get_json()["error"]
    assert rng.get("/v2/models/RNGModel/ready").status_code == 503
    assert rng.get("/v2/health/live").get_json() == {"live": True}
