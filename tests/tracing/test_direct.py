"""Spans made directly (catwalk.tracing.direct) against those the SDK's tracer makes.

The same requests go to two apps: one with catwalk's sampler in force (children made
directly, new traces sampled by catwalk), one whose sampler is named by OTEL_TRACES_SAMPLER
(every span the SDK's). What each exports, encoded by the OTLP exporter, must be the same
but for the ids and times; the ids must relate the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.trace import NonRecordingSpan, SpanKind, StatusCode
from test_spans import BATCHER, RNG, RNG_BODY, TRACEPARENT, Traced, kept_records

from catwalk.config import BatchingSettings
from catwalk.tracing.requests import ENVIRON
from catwalk.tracing.settings import TracingSettings
from catwalk.tracing.spans import child

SDK_SAMPLER = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.0"}
INVALID = orjson.dumps({"input": {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": -3.5}})
CORRELATION_ID = "catwalk.correlation_id"
ID_FIELDS = ("traceId", "spanId", "parentSpanId", "startTimeUnixNano", "endTimeUnixNano")


@pytest.fixture
def apps(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    made: list[Traced] = []

    def make(model: Path = RNG, sdk: bool = False, **settings: Any) -> Traced:
        with monkeypatch.context() as env:
            for name, value in (SDK_SAMPLER if sdk else {}).items():
                env.setenv(name, value)
            made.append(Traced(model, **settings))
        assert (made[-1].tracing.direct is None) is sdk
        return made[-1]

    yield make
    for one in made:
        one.close()


def exported(span: ReadableSpan) -> dict[str, Any]:
    """What the OTLP exporter sends of ``span``, its ids, times and correlation id (new per
    request) left out."""
    sent = MessageToDict(encode_spans([span]))
    (resource_spans,) = sent["resourceSpans"]
    ((one,),) = [scope["spans"] for scope in resource_spans["scopeSpans"]]
    for field in ID_FIELDS:
        one.pop(field, None)
    one["attributes"] = [a for a in one.get("attributes", []) if a["key"] != CORRELATION_ID]
    for link in one.get("links", []):
        link.pop("spanId")
        link.pop("traceId")
    return sent


def steps(app: Traced) -> dict[str, ReadableSpan]:
    """The spans of the one request ``app`` answered, by name."""
    spans = app.spans()
    found = {span.name: span for span in spans}
    assert len(found) == len(spans)
    return found


def related(spans: dict[str, ReadableSpan], request: str) -> None:
    """Each span but the request's is its child, in its trace, sampled, local."""
    top = spans[request].context
    assert top is not None
    for name, span in spans.items():
        if name == request:
            continue
        assert span.context is not None and span.parent is not None, name
        assert span.context.trace_id == top.trace_id, name
        assert span.parent == top, name
        assert span.context.trace_flags == top.trace_flags, name
        assert span.context.trace_state == top.trace_state, name
        assert not span.context.is_remote, name
        assert span.context.span_id not in (0, top.span_id), name


@pytest.mark.parametrize("body", [RNG_BODY, INVALID], ids=["valid", "invalid"])
def test_direct_spans_export_what_the_sdk_s_do(apps: Any, body: bytes) -> None:
    made = {}
    for sdk in (True, False):
        app = apps(sdk=sdk)
        answer = app.client.post("/predict", data=body, headers={"traceparent": TRACEPARENT})
        assert answer.status_code == (200 if body is RNG_BODY else 400)
        made[sdk] = steps(app)
    assert sorted(made[True]) == sorted(made[False])
    for name in made[True]:
        assert exported(made[False][name]) == exported(made[True][name]), name
        assert made[False][name].instrumentation_scope == made[True][name].instrumentation_scope
        assert made[False][name].resource == made[True][name].resource
    related(made[False], "POST /predict")
    if body is INVALID:
        failed = made[False]["catwalk.validate_input"]
        assert failed.status.is_ok is False
        assert dict(failed.attributes or {}) == {"catwalk.validation.problems": 1}


def test_batch_wait_spans_export_what_the_sdk_s_do(apps: Any) -> None:
    made = {}
    for sdk in (True, False):
        app = apps(BATCHER, sdk=sdk, batching=BatchingSettings(max_batch_size=4, max_latency_ms=1))
        answer = app.client.post(
            "/predict", data=b'{"input": {"x": 1}}', headers={"traceparent": TRACEPARENT}
        )
        assert answer.status_code == 200
        made[sdk] = steps(app)
    assert "catwalk.batch_wait" in made[False]
    for name in made[True]:
        assert exported(made[False][name]) == exported(made[True][name]), name
    spans = made[False]
    wait, call = spans["catwalk.batch_wait"], spans["predict_batch"]
    assert call.context is not None
    related({n: s for n, s in spans.items() if n != "predict_batch"}, "POST /predict")
    ((link,),) = [wait.links]
    assert link.context == call.context


def test_new_traces_are_sampled_at_the_ratio_by_their_trace_id(apps: Any) -> None:
    app = apps(tracing=TracingSettings(enabled=True, sample_ratio=0.25))
    for _ in range(400):
        assert app.client.post("/predict", data=RNG_BODY).status_code == 200
    spans = app.spans()
    requests = [s for s in spans if s.name == "POST /predict"]
    # binomial(400, 0.25): 100 +- 8.7; sampling twice (the SDK's draw after catwalk's)
    # would give 25
    assert 60 <= len(requests) <= 140, len(requests)
    bound = TraceIdRatioBased.get_bound_for_rate(0.25)
    for request in requests:
        assert request.context is not None and request.parent is None
        assert request.context.trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < bound
        assert request.context.trace_flags.sampled
    assert len(spans) == 4 * len(requests)  # the unsampled made none


def test_an_unsampled_client_trace_is_followed(apps: Any) -> None:
    app = apps()
    unsampled = TRACEPARENT[:-2] + "00"
    with kept_records() as records:
        answer = app.client.post("/predict", data=RNG_BODY, headers={"traceparent": unsampled})
    assert answer.status_code == 200
    assert app.spans() == []
    (line,) = [r for r in records if r.getMessage().startswith("POST /predict 200")]
    assert getattr(line, "trace_id") == TRACEPARENT[3:35]  # noqa: B009 - the client's


def test_span_limits_that_cut_keep_every_span_the_sdk_s(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4")
    app = Traced(RNG)
    try:
        assert app.tracing.direct is None
        assert app.client.post("/predict", data=RNG_BODY).status_code == 200
        (request,) = [s for s in app.spans() if s.name == "POST /predict"]
        assert dict(request.attributes or {})["url.path"] == "/pre"  # cut by the SDK
    finally:
        app.close()


def test_a_step_that_raises_exports_what_the_sdk_s_does(apps: Any) -> None:
    def check(value: int) -> list[str]:
        raise KeyError(value)

    made = {}
    for sdk in (True, False):
        app = apps(sdk=sdk)
        step = child(app.tracing, "catwalk.validate_input", check, True, {"catwalk.x": "y"})
        with app.tracing.tracer.start_as_current_span("request"), pytest.raises(KeyError):
            step(1)
        made[sdk] = steps(app)
    assert exported(made[False]["catwalk.validate_input"]) == exported(
        made[True]["catwalk.validate_input"]
    )
    failed = made[False]["catwalk.validate_input"]
    assert dict(failed.attributes or {}) == {"error.type": "KeyError"}
    assert failed.status.status_code is StatusCode.ERROR
    related(made[False], "request")


def test_an_unsampled_new_trace_still_logs_its_ids(apps: Any) -> None:
    app = apps(tracing=TracingSettings(enabled=True, sample_ratio=0.0))
    with kept_records() as records:
        for _ in range(2):
            assert app.client.post("/predict", data=RNG_BODY).status_code == 200
    assert app.spans() == []
    lines = [r for r in records if r.getMessage().startswith("POST /predict 200")]
    ids = [(getattr(r, "trace_id", ""), getattr(r, "span_id", "")) for r in lines]
    assert len(ids) == 2 and ids[0] != ids[1]
    for trace_id, span_id in ids:
        assert len(trace_id) == 32 and len(span_id) == 16 and int(trace_id, 16) > 0


@pytest.mark.parametrize("flags", ["00", "02"], ids=["plain", "random-trace-id"])
def test_a_clients_unsampled_trace_is_followed_as_the_sdk_does(apps: Any, flags: str) -> None:
    app = apps()
    carrier = {"HTTP_TRACEPARENT": f"{TRACEPARENT[:-2]}{flags}", "HTTP_TRACESTATE": "k=v,a=b"}
    parent = propagate.extract(carrier, getter=ENVIRON)
    direct = app.tracing.direct.unsampled_child(parent)
    sdk = app.tracing.tracer.start_span("POST /predict", context=parent, kind=SpanKind.SERVER)
    assert type(direct) is type(sdk) is NonRecordingSpan
    mine, theirs = direct.get_span_context(), sdk.get_span_context()
    assert (mine.trace_id, mine.is_remote, mine.trace_flags, mine.trace_state) == (
        theirs.trace_id,
        theirs.is_remote,
        theirs.trace_flags,
        theirs.trace_state,
    )
    assert mine.span_id not in (0, theirs.span_id)
    sampled = propagate.extract({"HTTP_TRACEPARENT": TRACEPARENT}, getter=ENVIRON)
    assert app.tracing.direct.unsampled_child(sampled) is None  # the SDK's to make
    assert app.tracing.direct.unsampled_child(Context()) is None
