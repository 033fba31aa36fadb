"""KServe's own Python client (``kserve.InferenceRESTClient``, protocol v2) against catwalk.

The same infer as tritonclient's (tests/protocol/test_tritonclient.py): binary and JSON
tensors of the test data give /predict's outputs; a bad record's field message reaches the
client's error; health and model readiness answer as KServe's client expects.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import pytest
from clients import as_records, columns, example_records

from conftest import EXAMPLES, V2Server, needs

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kserve() -> Any:
    return needs("kserve")


async def _infer(kserve: Any, server: V2Server, name: str, records: list[Any], binary: bool) -> Any:
    import httpx

    metadata = httpx.get(f"{server.url}/v2/models/{name}", timeout=10).json()
    inputs = []
    for tensor_name, array in columns(metadata, records).items():
        datatype = next(t["datatype"] for t in metadata["inputs"] if t["name"] == tensor_name)
        tensor = kserve.InferInput(tensor_name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array, binary_data=binary)
        inputs.append(tensor)
    request = kserve.InferRequest(model_name=name, infer_inputs=inputs, request_id="kserve-1")
    client = kserve.InferenceRESTClient(kserve.RESTConfig(protocol="v2", retries=0))
    try:
        assert await client.is_server_live(server.url)
        assert await client.is_server_ready(server.url)
        assert await client.is_model_ready(server.url, name)
        response = await client.infer(server.url, request, model_name=name)
    finally:
        await client.close()
    assert response.id == "kserve-1"
    return as_records({out.name: out.as_numpy() for out in response.outputs})


@pytest.mark.parametrize("example", ["rng", "forest"])
@pytest.mark.parametrize("binary", [True, False])
def test_kserve_rest_client_infers_the_test_data(
    kserve: Any, v2_servers: Callable[..., V2Server], example: str, binary: bool
) -> None:
    server = v2_servers(EXAMPLES / example)
    name = {"rng": "RNGModel", "forest": "DiabetesForest"}[example]
    records = example_records(EXAMPLES / example)
    got = asyncio.run(_infer(kserve, server, name, records, binary))
    expected = [server.predict(record) for record in records]
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a.keys() == b.keys()
        assert all(math.isclose(a[k], b[k], rel_tol=1e-9) for k in a)


def test_kserve_rest_client_sees_the_field_message(
    kserve: Any, v2_servers: Callable[..., V2Server]
) -> None:
    import httpx

    server = v2_servers(EXAMPLES / "rng")
    records = example_records(EXAMPLES / "rng")[:2]
    records[1] = {**records[1], "sigma": -1.0}
    with pytest.raises(httpx.HTTPStatusError) as raised:
        asyncio.run(_infer(kserve, server, "RNGModel", records, True))
    assert raised.value.response.status_code == 400
    assert "input[1].sigma: -1.0 is less than the minimum of 0" in str(raised.value)
