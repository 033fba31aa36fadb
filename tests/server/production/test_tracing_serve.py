"""Tracing in production: real nginx + gunicorn (2 workers) exporting to a real OTLP endpoint.

The endpoints are tests/tracing/otlp_receiver.py's (an OTLP/HTTP server decoding each
ExportTraceServiceRequest with opentelemetry-proto, and a gRPC TraceService).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from served import RNG, RNG_INPUT, Server, child_env, write_config

from catwalk.checks.server_checks import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tracing"))  # the receivers
from otlp_receiver import SERVER_KIND, GrpcReceiver, HttpReceiver, Span

BATCHER = Path(__file__).resolve().parents[1] / "models" / "batcher"
CLIENT_SPAN = "00f067aa0ba902b7"
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}  # ms between the exporter's batches


def traceparent(trace_id: str) -> dict[str, str]:
    return {"traceparent": f"00-{trace_id}-{CLIENT_SPAN}-01"}


def tracing_env(endpoint: str, **extra: str) -> dict[str, str]:
    return child_env(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        SERVER_WORKERS="2",
        **{**FAST_EXPORT, **extra},
    )


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    found = HttpReceiver()
    yield found
    found.stop()


def json_line(line: str) -> dict[str, Any]:
    """A JSON log line as a dict (any other line: empty)."""
    try:
        found = orjson.loads(line)
    except orjson.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) else {}


def of_trace(spans: list[Span], trace_id: str) -> dict[str, list[Span]]:
    found: dict[str, list[Span]] = {}
    for span in spans:
        if span.trace_id == trace_id:
            found.setdefault(span.name, []).append(span)
    return found


def test_two_workers_continue_the_clients_traces_and_log_their_ids(
    serve: Callable[..., Server], receiver: HttpReceiver
) -> None:
    server = serve(RNG, env=tracing_env(receiver.endpoint, LOG_FORMAT="json"))
    traces = [f"{i + 1:032x}" for i in range(16)]

    def ask(trace_id: str) -> int:
        body = {"correlation_id": f"c-{trace_id[-4:]}", "input": RNG_INPUT}
        return server.post("/predict", json=body, headers=traceparent(trace_id)).status_code

    with ThreadPoolExecutor(4) as pool:  # unbatched: each worker answers some
        assert list(pool.map(ask, traces)) == [200] * len(traces)
    for path in ("/status", "/ready", "/metrics"):
        assert server.get(path).status_code == 200
    spans = receiver.wait_for(
        lambda got: {s.trace_id for s in got if s.kind == SERVER_KIND} >= set(traces)
    )
    pids = set()
    for trace_id in traces:
        found = of_trace(spans, trace_id)
        (request,) = found["POST /predict"]
        assert request.kind == SERVER_KIND
        assert request.parent_span_id == CLIENT_SPAN
        assert request.attributes["http.route"] == "/predict"
        assert request.attributes["http.response.status_code"] == 200
        assert request.attributes["catwalk.correlation_id"] == f"c-{trace_id[-4:]}"
        assert request.resource["catwalk.model.name"] == "RNGModel"
        assert request.resource["service.name"] == "RNGModel"
        pids.add(request.resource["process.pid"])
        for name in ("catwalk.validate_input", "predict", "catwalk.validate_output"):
            (step,) = found[name]
            assert step.parent_span_id == request.span_id
    lines = [json_line(line) for line in server.output().splitlines()]
    logged = {
        line["trace_id"]: line["span_id"]
        for line in lines
        if line.get("path") == "/predict" and "trace_id" in line
    }
    for trace_id in traces:
        (request,) = of_trace(spans, trace_id)["POST /predict"]
        assert logged[trace_id] == request.span_id
    # Both workers export, each with its own SDK: spans of both come (rng is fast enough for
    # one worker to keep up with a few clients, so more are sent until the other has answered).
    for _ in range(20):
        if len(pids) == 2:
            break
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(ask, [f"{i:032x}" for i in range(100, 132)])) == {200}
        time.sleep(0.3)
        pids = {s.resource["process.pid"] for s in receiver.spans if s.kind == SERVER_KIND}
    assert len(pids) == 2
    health = ("/status", "/ready", "/metrics")  # long since exported, were there any
    assert not [s for s in receiver.spans if s.attributes.get("url.path") in health]


def test_batch_spans_link_each_member_under_concurrent_load(
    serve: Callable[..., Server], receiver: HttpReceiver
) -> None:
    server = serve(BATCHER, env=tracing_env(receiver.endpoint))
    traces = [f"{i + 1:032x}" for i in range(64)]
    session = threading.local()

    def ask(trace_id: str) -> int:
        if not hasattr(session, "s"):
            session.s = requests.Session()
        answer = session.s.post(
            server.url + "/predict",
            json={"input": {"x": 1}},
            headers=traceparent(trace_id),
            timeout=10,
        )
        return answer.status_code

    with ThreadPoolExecutor(32) as pool:
        assert list(pool.map(ask, traces)) == [200] * len(traces)

    def arrived(got: list[Span]) -> bool:
        served = {s.trace_id for s in got if s.name == "POST /predict"}
        batched = sum(
            s.attributes.get("catwalk.batch.size", 0) for s in got if s.name == "predict_batch"
        )
        return served >= set(traces) and batched >= len(traces)

    spans = receiver.wait_for(arrived)
    requests_by_trace = {s.trace_id: s for s in spans if s.name == "POST /predict"}
    assert set(traces) <= set(requests_by_trace)
    calls = [s for s in spans if s.name == "predict_batch"]
    assert max(c.attributes["catwalk.batch.size"] for c in calls) > 1  # really batched
    linked: dict[str, str] = {}
    for call in calls:
        assert len(call.links) == call.attributes["catwalk.batch.size"]
        for trace_id, span_id in call.links:
            assert trace_id not in linked  # one call per request
            linked[trace_id] = span_id
    for trace_id in traces:
        request = requests_by_trace[trace_id]
        assert linked[trace_id] == request.span_id
        (wait,) = of_trace(spans, trace_id)["catwalk.batch_wait"]
        assert wait.parent_span_id == request.span_id
        ((_, call_id),) = wait.links
        assert call_id in {c.span_id for c in calls}


def test_grpc_exporter(serve: Callable[..., Server]) -> None:
    receiver = GrpcReceiver()
    try:
        env = tracing_env(receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="grpc")
        server = serve(RNG, env=env)
        trace_id = "a" * 32
        answer = server.post("/predict", json={"input": RNG_INPUT}, headers=traceparent(trace_id))
        assert answer.status_code == 200
        spans = receiver.wait_for(lambda got: any(s.trace_id == trace_id for s in got))
        names = set(
            of_trace(receiver.wait_for(lambda got: len(of_trace(got, trace_id)) == 4), trace_id)
        )
        assert names == {
            "POST /predict",
            "catwalk.validate_input",
            "predict",
            "catwalk.validate_output",
        }
        assert spans
    finally:
        receiver.stop()


def test_a_stopping_worker_flushes_its_spans(
    serve: Callable[..., Server], receiver: HttpReceiver
) -> None:
    # The exporter's own timer would wait a minute: only the flush at exit sends these.
    env = tracing_env(receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="60000")
    server = serve(RNG, env=env)
    trace_id = "b" * 32
    assert server.post("/predict", json={"input": RNG_INPUT}, headers=traceparent(trace_id)).ok
    time.sleep(0.5)
    assert not receiver.spans
    server.stop()
    spans = receiver.wait_for(lambda got: any(s.trace_id == trace_id for s in got), timeout=5)
    assert {s.name for s in spans if s.trace_id == trace_id} >= {"POST /predict", "predict"}


def latencies(server: Server, count: int) -> list[float]:
    session = requests.Session()
    found = []
    for i in range(count):
        started = time.perf_counter()
        answer = session.post(
            server.url + "/predict",
            json={"input": RNG_INPUT},
            headers=traceparent(f"{i + 1:032x}"),
            timeout=10,
        )
        found.append(time.perf_counter() - started)
        assert answer.status_code == 200
    return found


def test_an_unreachable_endpoint_never_fails_nor_delays_a_request(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    config = write_config(tmp_path, "tracing:\n  max_queue_size: 8\n")
    off = serve(RNG, env=child_env(SERVER_WORKERS="2"))
    baseline = latencies(off, 300)
    off.stop()
    on = serve(RNG, config=config, env=tracing_env(nowhere))
    traced = latencies(on, 300)
    # Median and 95th percentile stay where they were without tracing (a small allowance for
    # the spans' own cost and this shared machine's noise).
    assert statistics.median(traced) < statistics.median(baseline) * 1.5 + 0.002
    cut = int(len(traced) * 0.95)
    assert sorted(traced)[cut] < sorted(baseline)[cut] * 2 + 0.005
    metrics = on.get("/metrics").text
    dropped = [
        line
        for line in metrics.splitlines()
        if line.startswith("catwalk_trace_spans_dropped_total")
    ]
    assert dropped and float(dropped[0].split()[-1]) > 0, metrics
    warnings = [line for line in on.output().splitlines() if "spans are dropped" in line]
    assert 1 <= len(warnings) <= 2  # once per worker at most, however many were dropped
