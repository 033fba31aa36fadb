"""Span names, parents, links and attributes, in process: the SDK's in-memory exporter."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from catwalk.config import BatchingSettings, ServerSettings
from catwalk.model import load_model
from catwalk.server.app import ModelApp, create_app
from catwalk.server.logs.text import LOG_FORMAT
from catwalk.spec import load_spec
from catwalk.tracing.logs import TracedJson, TracedText
from catwalk.tracing.requests import route_of
from catwalk.tracing.settings import TracingSettings

ROOT = Path(__file__).resolve().parents[2]
RNG = ROOT / "example_models" / "rng"
BATCHER = ROOT / "tests" / "server" / "models" / "batcher"
RAISES = ROOT / "tests" / "server" / "models" / "raises"
RNG_BODY = orjson.dumps({"input": {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}})
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
ON = TracingSettings(enabled=True)


class Traced:
    """An app with tracing on, its spans in memory."""

    def __init__(self, model: Path, **settings: Any) -> None:
        settings.setdefault("tracing", ON)
        self.app: ModelApp = create_app(load_model(load_spec(model)), ServerSettings(**settings))
        self.tracing = self.app.tracing
        self.exporter = InMemorySpanExporter()
        self.tracing.start(exporter=self.exporter)
        self.client = self.app.test_client()

    def spans(self) -> list[ReadableSpan]:
        self.tracing.runtime.queue.force_flush()
        return list(self.exporter.get_finished_spans())

    def close(self) -> None:
        self.tracing.flush()


@pytest.fixture
def traced() -> Any:
    made: list[Traced] = []

    def make(model: Path = RNG, **settings: Any) -> Traced:
        made.append(Traced(model, **settings))
        return made[-1]

    yield make
    for one in made:
        one.close()


def by_name(spans: list[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    found: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        found.setdefault(span.name, []).append(span)
    return found


def hex_trace(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def test_predict_continues_the_client_trace(traced: Callable[..., Traced]) -> None:
    app = traced()
    answer = app.client.post("/predict", data=RNG_BODY, headers={"traceparent": TRACEPARENT})
    assert answer.status_code == 200
    spans = by_name(app.spans())
    assert sorted(spans) == [
        "POST /predict",
        "catwalk.validate_input",
        "catwalk.validate_output",
        "predict",
    ]
    request = spans["POST /predict"][0]
    assert request.kind is SpanKind.SERVER
    assert hex_trace(request) == CLIENT_TRACE
    assert request.parent is not None and format(request.parent.span_id, "016x") == CLIENT_SPAN
    attributes = dict(request.attributes or {})
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.route"] == "/predict"
    assert attributes["http.response.status_code"] == 200
    assert attributes["catwalk.correlation_id"] == orjson.loads(answer.data)["correlation_id"]
    assert request.resource.attributes["catwalk.model.name"] == "RNGModel"
    assert request.resource.attributes["catwalk.model.version"] == "0.0.1"
    assert request.status.status_code is StatusCode.UNSET
    assert request.context is not None
    for name in ("catwalk.validate_input", "predict", "catwalk.validate_output"):
        child = spans[name][0]
        assert child.parent is not None and child.parent.span_id == request.context.span_id
        assert hex_trace(child) == CLIENT_TRACE
        assert child.resource.attributes["catwalk.model.name"] == "RNGModel"
    assert dict(spans["predict"][0].attributes or {})["catwalk.batch.size"] == 1
    assert app.tracing.runtime.provider.resource.attributes["service.name"] == "RNGModel"


def test_a_request_without_traceparent_starts_a_trace(traced: Callable[..., Traced]) -> None:
    app = traced()
    app.client.post("/predict", data=RNG_BODY)
    app.client.post("/predict", data=RNG_BODY, headers={"traceparent": "00-zz-bad-01"})
    requests = by_name(app.spans())["POST /predict"]
    assert len(requests) == 2
    assert all(span.parent is None for span in requests)
    assert hex_trace(requests[0]) != hex_trace(requests[1])


def test_health_endpoints_make_no_spans(traced: Callable[..., Traced]) -> None:
    app = traced()
    for path in ("/status", "/ready", "/metrics"):
        assert app.client.get(path).status_code == 200
    app.client.get("/info")
    assert [span.name for span in app.spans()] == ["GET /info"]


def test_untraced_paths_are_configurable(traced: Callable[..., Traced]) -> None:
    app = traced(tracing=TracingSettings(enabled=True, untraced_paths=("/info",)))
    app.client.get("/info")
    app.client.get("/status")
    assert [span.name for span in app.spans()] == ["GET /status"]


def test_an_invalid_request_records_the_message_not_the_body(
    traced: Callable[..., Traced],
) -> None:
    app = traced()
    body = {
        "input": {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": -3.5},
        "extra_data": {"secret": "s3cr3t"},
    }
    answer = app.client.post("/predict", data=orjson.dumps(body))
    assert answer.status_code == 400
    spans = by_name(app.spans())
    request = spans["POST /predict"][0]
    attributes = dict(request.attributes or {})
    assert attributes["http.response.status_code"] == 400
    assert attributes["catwalk.error.message"] == orjson.loads(answer.data)["output"]["message"]
    assert request.status.status_code is StatusCode.UNSET  # a 4xx is the client's
    validation = spans["catwalk.validate_input"][0]
    assert validation.status.status_code is StatusCode.ERROR
    assert dict(validation.attributes or {})["catwalk.validation.problems"] == 1
    assert "predict" not in spans
    everything = repr([(s.name, dict(s.attributes or {}), s.events) for s in app.spans()])
    assert "s3cr3t" not in everything


def test_a_model_error_is_a_span_error(traced: Callable[..., Traced]) -> None:
    app = traced(RAISES)
    answer = app.client.post("/predict", data=orjson.dumps({"input": {"x": 1, "label": "boom"}}))
    assert answer.status_code == 500
    spans = by_name(app.spans())
    request = spans["POST /predict"][0]
    message = orjson.loads(answer.data)["output"]["message"]
    assert request.status.status_code is StatusCode.ERROR
    assert request.status.description == message
    assert dict(request.attributes or {})["error.type"] == "500"
    predict = spans["predict"][0]
    assert predict.status.status_code is StatusCode.ERROR
    assert dict(predict.attributes or {})["error.type"] == "ModelError"
    assert not predict.events  # no exception event: its message may quote the input


def test_v2_infer_is_traced_the_same_way(traced: Callable[..., Traced]) -> None:
    app = traced()
    body = {
        "inputs": [
            {"name": "seed", "shape": [2], "datatype": "INT64", "data": [0, 1]},
            {"name": "seed_version", "shape": [2], "datatype": "INT64", "data": [2, 2]},
            {"name": "mu", "shape": [2], "datatype": "FP64", "data": [0.0, 1.0]},
            {"name": "sigma", "shape": [2], "datatype": "FP64", "data": [1.0, 2.0]},
        ]
    }
    answer = app.client.post(
        "/v2/models/RNGModel/infer", data=orjson.dumps(body), headers={"traceparent": TRACEPARENT}
    )
    assert answer.status_code == 200
    spans = by_name(app.spans())
    request = spans["POST /v2/models/{model_name}/infer"][0]
    assert hex_trace(request) == CLIENT_TRACE
    assert dict(request.attributes or {})["http.route"] == "/v2/models/{model_name}/infer"
    assert len(spans["catwalk.validate_input"]) == 1
    assert len(spans["predict"]) == 2  # one call per record: an object-input model
    assert len(spans["catwalk.validate_output"]) == 1


def test_route_templates() -> None:
    assert route_of("/predict") == "/predict"
    assert route_of("/docs/swagger-ui.css") == "/docs/{name}"
    assert route_of("/v2/models/m/versions/2/infer") == (
        "/v2/models/{model_name}/versions/{model_version}/infer"
    )
    assert route_of("/v2/models/m/ready") == "/v2/models/{model_name}/ready"
    assert route_of("/v2/health/live") == "/v2/health/live"
    assert route_of("/models/price/predict") == "/models/{name}/predict"
    assert route_of("/models/scale/versions/1.9/predict") == (
        "/models/{name}/versions/{version}/predict"
    )
    assert route_of("/nope") is None


def test_unknown_path_has_no_route(traced: Callable[..., Traced]) -> None:
    app = traced()
    assert app.client.get("/nope/123").status_code == 404
    span = app.spans()[0]
    assert span.name == "GET"
    assert "http.route" not in dict(span.attributes or {})
    assert dict(span.attributes or {})["url.path"] == "/nope/123"


def test_a_batch_links_every_member(traced: Callable[..., Traced]) -> None:
    app = traced(BATCHER, batching=BatchingSettings(max_batch_size=8, max_latency_ms=200))
    answers: list[int] = []
    traces = [f"{i + 1:032x}" for i in range(8)]
    barrier = threading.Barrier(len(traces))

    def send(trace_id: str) -> None:
        client = app.app.test_client()
        barrier.wait()
        headers = {"traceparent": f"00-{trace_id}-{CLIENT_SPAN}-01"}
        response = client.post("/predict", data=b'{"input": {"x": 1}}', headers=headers)
        answers.append(response.status_code)

    threads = [threading.Thread(target=send, args=(t,)) for t in traces]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 8
    spans = by_name(app.spans())
    requests = {hex_trace(s): s for s in spans["POST /predict"]}
    assert sorted(requests) == traces
    calls = spans["predict_batch"]
    assert sum(dict(c.attributes or {})["catwalk.batch.size"] for c in calls) == 8
    assert any(dict(c.attributes or {})["catwalk.batch.size"] > 1 for c in calls)
    linked = {}
    for call in calls:
        assert len(call.links) == dict(call.attributes or {})["catwalk.batch.size"]
        for link in call.links:
            linked[format(link.context.trace_id, "032x")] = link.context.span_id
    # every request's span is linked from the one call its input was part of
    assert {t: s.context.span_id for t, s in requests.items() if s.context} == linked
    calls_by_id = {c.context.span_id: c for c in calls if c.context}
    for wait in spans["catwalk.batch_wait"]:
        request = requests[hex_trace(wait)]
        assert wait.parent is not None and request.context is not None
        assert wait.parent.span_id == request.context.span_id
        (back,) = wait.links
        assert back.context.span_id in calls_by_id
    assert len(spans["catwalk.batch_wait"]) == 8


@contextmanager
def kept_records() -> Iterator[list[logging.LogRecord]]:
    """catwalk.server's records at INFO meanwhile, with the ids TraceIds gives them."""
    from catwalk.tracing.logs import TraceIds

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    keep.addFilter(TraceIds())
    logger = logging.getLogger("catwalk.server")
    logger.addHandler(keep)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)


def test_log_lines_carry_the_ids(traced: Callable[..., Traced]) -> None:
    app = traced()
    with kept_records() as records:
        app.client.post("/predict", data=RNG_BODY, headers={"traceparent": TRACEPARENT})
    (line,) = [r for r in records if r.getMessage().startswith("POST /predict 200")]
    assert getattr(line, "trace_id") == CLIENT_TRACE  # noqa: B009
    request = by_name(app.spans())["POST /predict"][0]
    assert request.context is not None
    assert getattr(line, "span_id") == format(request.context.span_id, "016x")  # noqa: B009
    as_json = orjson.loads(TracedJson().format(line))
    assert (as_json["trace_id"], as_json["span_id"]) == (line.trace_id, line.span_id)  # type: ignore[attr-defined]
    text = TracedText(LOG_FORMAT).format(line)
    assert text.endswith(f"trace_id={CLIENT_TRACE} span_id={line.span_id}")  # type: ignore[attr-defined]


def test_off_imports_no_opentelemetry() -> None:
    code = (
        "import sys, orjson\n"
        "from catwalk.config import ServerSettings\n"
        "from catwalk.model import load_model\n"
        "from catwalk.spec import load_spec\n"
        "from catwalk.server.app import create_app\n"
        f"app = create_app(load_model(load_spec({str(RNG)!r})), ServerSettings())\n"
        "c = app.test_client()\n"
        f"assert c.post('/predict', data={RNG_BODY!r}).status_code == 200\n"
        "assert app.tracing is None\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "CATWALK_ENV_MANAGER": "local"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_install_swaps_the_formatter_keeping_its_state() -> None:
    from catwalk.server.logs.jsonlog import JsonFormatter
    from catwalk.tracing.logs import TraceIds, install

    handler = logging.StreamHandler()
    handler._catwalk = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter({"model_name": "RNGModel", "model_version": "0.0.1"}))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        install()
        install()  # once per handler
    finally:
        root.removeHandler(handler)
    assert type(handler.formatter) is TracedJson
    assert handler.formatter.model_fields == {"model_name": "RNGModel", "model_version": "0.0.1"}
    assert sum(isinstance(f, TraceIds) for f in handler.filters) == 1
    record = logging.LogRecord("catwalk.server", logging.INFO, __file__, 1, "hello", None, None)
    assert "trace_id" not in orjson.loads(handler.format(record))  # no span: no ids
