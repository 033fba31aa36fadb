"""tritonclient[http] (NVIDIA's own client, its defaults) against real catwalk servers.

Production servers (nginx + gunicorn, batching on where model.yml asks) of the rng, batch,
dataframe and forest examples, and the debug server: metadata as model.yml maps it, infer
with binary tensors (the client's default) and with JSON tensors giving /predict's outputs,
64 records in one request, a bad record's field message, 404s, bearer tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from clients import as_records, columns, example_records

from conftest import EXAMPLES, V2Server, needs

pytestmark = pytest.mark.slow

F = "FP64"
METADATA = {
    "rng": (
        "RNGModel", "0.0.1",
        [("seed", "INT64"), ("seed_version", "INT64"), ("mu", F), ("sigma", F)], [("score", F)],
    ),
    "batch": (
        "BatchRNGModel", "0.0.1",
        [("seed", "INT64"), ("seed_version", "INT64"), ("mu", F), ("sigma", F)], [("score", F)],
    ),
    "dataframe": (
        "NeuronDataFrame", "1.0.0", [("x1", F), ("x2", F), ("x3", F)], [("probability", F)],
    ),
    "forest": (
        "DiabetesForest", "1.0.0",
        [(name, F) for name in ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")],
        [("progression", F)],
    ),
}  # fmt: skip


@pytest.fixture(scope="module")
def http() -> Any:
    return needs("tritonclient.http")


def infer_records(
    http: Any, server: V2Server, name: str, records: list[dict[str, Any]], binary: bool, **kw: Any
) -> list[dict[str, Any]]:
    client = http.InferenceServerClient(server.address, connection_timeout=30, network_timeout=60)
    metadata = client.get_model_metadata(name, **kw)
    inputs = []
    for tensor_name, array in columns(metadata, records).items():
        datatype = next(t["datatype"] for t in metadata["inputs"] if t["name"] == tensor_name)
        tensor = http.InferInput(tensor_name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    outputs = None
    if not binary:
        outputs = [
            http.InferRequestedOutput(t["name"], binary_data=False) for t in metadata["outputs"]
        ]
    result = client.infer(name, inputs, outputs=outputs, **kw)
    response = result.get_response()
    for out in response["outputs"]:
        assert ("data" in out) is (not binary), out  # the form asked for came back
    return as_records({t["name"]: result.as_numpy(t["name"]) for t in metadata["outputs"]})


def close(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(math.isclose(x[k], y[k], rel_tol=1e-9) for k in x)
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("example", ["rng", "batch", "dataframe", "forest"])
def test_tritonclient_defaults_reach_every_example(
    http: Any, v2_servers: Callable[..., V2Server], example: str
) -> None:
    server = v2_servers(EXAMPLES / example)
    name, version, inputs, outputs = METADATA[example]
    client = http.InferenceServerClient(server.address)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready(name) and client.is_model_ready(name, version)
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata(name)
    assert metadata == client.get_model_metadata(name, version)
    assert metadata["name"] == name and metadata["versions"] == [version]
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["inputs"]] == [
        (n, d, [-1]) for n, d in inputs
    ]
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["outputs"]] == [
        (n, d, [-1]) for n, d in outputs
    ]

    records = example_records(EXAMPLES / example)
    if example == "batch":
        expected = server.predict(records)
    elif example == "dataframe":
        expected = server.predict(records)  # a DataFrame model takes a list of records too
    else:
        expected = [server.predict(record) for record in records]
    binary = infer_records(http, server, name, records, binary=True)
    json = infer_records(http, server, name, records, binary=False)
    assert close(binary, expected), (binary, expected)
    assert close(json, expected), (json, expected)


def test_a_64_record_request_to_the_batching_forest(
    http: Any, v2_servers: Callable[..., V2Server]
) -> None:
    server = v2_servers(EXAMPLES / "forest")
    base = example_records(EXAMPLES / "forest")
    records = [base[i % len(base)] for i in range(64)]
    got = infer_records(http, server, "DiabetesForest", records, binary=True)
    by_record = {i: server.predict(record) for i, record in enumerate(base)}
    assert close(got, [by_record[i % len(base)] for i in range(64)])
    metrics = __import__("requests").get(server.url + "/metrics", timeout=10).text
    assert 'catwalk_requests_total{endpoint="/v2/models/infer",status="200"}' in metrics


def test_a_bad_record_raises_with_catwalks_field_message(
    http: Any, v2_servers: Callable[..., V2Server]
) -> None:
    server = v2_servers(EXAMPLES / "rng")
    records = example_records(EXAMPLES / "rng")[:4]
    records[3] = {**records[3], "sigma": -1.0}
    with pytest.raises(http.InferenceServerException) as raised:
        infer_records(http, server, "RNGModel", records, binary=True)
    assert raised.value.status() == "400"
    assert raised.value.message() == "input[3].sigma: -1.0 is less than the minimum of 0"


def test_an_unknown_model_or_version_is_a_404(
    http: Any, v2_servers: Callable[..., V2Server]
) -> None:
    server = v2_servers(EXAMPLES / "rng")
    client = http.InferenceServerClient(server.address)
    records = example_records(EXAMPLES / "rng")[:1]
    for call in (
        lambda: client.get_model_metadata("Nope"),
        lambda: client.get_model_metadata("RNGModel", "9.9.9"),
        lambda: infer_records(http, server, "RNGModel", records, True, model_version="9"),
    ):
        with pytest.raises(http.InferenceServerException) as raised:
            call()
        assert raised.value.status() == "404"
        assert "not found: this server serves RNGModel version 0.0.1" in raised.value.message()
    assert not client.is_model_ready("Nope")


def test_the_debug_server_speaks_it_too(http: Any, v2_servers: Callable[..., V2Server]) -> None:
    for example, name in (("rng", "RNGModel"), ("forest", "DiabetesForest")):
        server = v2_servers(EXAMPLES / example, debug=True)
        records = example_records(EXAMPLES / example)
        expected = [server.predict(record) for record in records]
        assert close(infer_records(http, server, name, records, binary=True), expected)


def test_with_auth_the_clients_header_carries_the_token(
    http: Any, v2_servers: Callable[..., V2Server], tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("auth")
    tokens = folder / "tokens.txt"
    tokens.write_text("v2-secret-token\n")
    tokens.chmod(0o600)
    config = folder / "application.yml"
    config.write_text("server:\n  auth:\n    tokens_file: tokens.txt\n")
    server = v2_servers(EXAMPLES / "rng", config=config)
    client = http.InferenceServerClient(server.address)
    assert client.is_server_live() and client.is_server_ready()  # open, like /status
    with pytest.raises(http.InferenceServerException) as raised:
        client.get_model_metadata("RNGModel")
    assert raised.value.status() == "401"
    assert raised.value.message().startswith("unauthorized: missing Authorization")
    headers = {"Authorization": "Bearer v2-secret-token"}
    records = example_records(EXAMPLES / "rng")
    # A copy: tritonclient adds its Inference-Header-Content-Length to the dict it is given.
    got = infer_records(http, server, "RNGModel", records, binary=True, headers=dict(headers))
    expected = [server.predict(record, headers=headers) for record in records]
    assert close(got, expected)
