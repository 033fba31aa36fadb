"""schemathesis against /openapi.json of a real production server (nginx + gunicorn).

Every operation of the document is fuzzed, with data that fits the schema and data that does
not: no 5xx from catwalk's code, and every response (status, content type, body, headers)
conforms to the document. Bounded: a fixed number of examples per operation.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from served import RNG, Server, child_env

from catwalk.checks.server_checks import free_port

EXAMPLES = 100
# How the error handler words a failure of the model itself (its output or its exception).
MODEL_FAILURES = ("output", "predict raised")


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    log = tmp_path_factory.mktemp("schemathesis") / "server.log"
    args = [sys.executable, "-m", "catwalk", "serve", "--no-install", "-m", str(RNG)]
    server = Server([*args, "--server-port", str(port)], port, "http", child_env(), log)
    try:
        yield server.wait_ready()
    finally:
        server.stop()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_server_keeps_its_documented_contract(production: Server, mode: GenerationMode) -> None:
    api = schemathesis.openapi.from_url(production.url + "/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert {op.path for op in operations} >= {"/predict", "/status", "/ready", "/info"}
    v2 = {"/v2", "/v2/health/live", "/v2/models/{model_name}/infer",
          "/v2/models/{model_name}/versions/{model_version}/infer"}  # fmt: skip
    assert {op.path for op in operations} >= v2  # the Open Inference Protocol's routes
    if mode == GenerationMode.NEGATIVE:  # a body or a /v2 path parameter can be wrong
        operations = [
            op for op in operations
            if "requestBody" in op.definition.raw or "{model_name}" in op.path
        ]  # fmt: skip
        assert {op.path for op in operations} >= {"/predict", "/v2/models/{model_name}/infer"}
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(excluded_checks=[not_a_server_error])
            if response.status_code >= 500:
                # Documented 500s are the model's (RNG's gauss overflows to inf for a huge
                # sigma: "output.score: inf cannot be represented"); never catwalk's own.
                body = response.json()
                message = body["error"] if "error" in body else body["output"]["message"]
                assert response.status_code == 500, response.text
                assert message.startswith(MODEL_FAILURES), message

        check()
