"""The debug server (``catwalk serve --debug``, what ``test-server --debug`` starts) traces
like production: a real OTLP/HTTP endpoint (tests/tracing/otlp_receiver.py) receives its spans.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tracing"))  # the receivers
from otlp_receiver import SERVER_KIND, HttpReceiver

TRACE = "d" * 32
CLIENT_SPAN = "00f067aa0ba902b7"
RNG_INPUT = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}


def test_the_debug_server_exports_a_requests_spans(
    start_server: Callable[..., Any],  # tests/server/conftest.py: -> ServerRun
) -> None:
    receiver = HttpReceiver()
    try:
        env = {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        server = start_server("rng", "--debug", "--no-run-tests", env=env)
        answer = requests.post(
            server.url + "/predict",
            json={"input": RNG_INPUT},
            headers={"traceparent": f"00-{TRACE}-{CLIENT_SPAN}-01"},
            timeout=10,
        )
        assert answer.status_code == 200
        spans = receiver.wait_for(lambda got: len([s for s in got if s.trace_id == TRACE]) == 4)
        assert server.stop() == 0
    finally:
        receiver.stop()
    by_name = {s.name: s for s in spans if s.trace_id == TRACE}
    request = by_name.pop("POST /predict")
    assert request.kind == SERVER_KIND
    assert request.parent_span_id == CLIENT_SPAN
    assert request.attributes["http.response.status_code"] == 200
    assert request.resource["service.name"] == "RNGModel"
    assert sorted(by_name) == ["catwalk.validate_input", "catwalk.validate_output", "predict"]
    assert {s.parent_span_id for s in by_name.values()} == {request.span_id}
    (line,) = [line for line in server.output().splitlines() if "POST /predict 200" in line]
    assert line.endswith(f"trace_id={TRACE} span_id={request.span_id}")
