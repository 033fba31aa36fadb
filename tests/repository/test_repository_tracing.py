"""A repository's requests traced: each span names the model it is about (in process)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from repo_fixtures import SHOP

from catwalk.checks.server_process import ServerProcess
from catwalk.checks.server_reach import wait_ready
from catwalk.config import ServerSettings
from catwalk.config_models import ModelsSettings
from catwalk.ports import free_port
from catwalk.repository.load import load_repository
from catwalk.server.repository_app import create_repository_app
from catwalk.tracing.settings import TracingSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tracing"))  # the receivers
from otlp_receiver import HttpReceiver


def traced(root: Path, models: ModelsSettings) -> tuple[Any, InMemorySpanExporter]:
    """The repository ``root``'s app, tracing on, its spans kept in memory."""
    settings = ServerSettings(workers=1, models=models, tracing=TracingSettings(enabled=True))
    app = create_repository_app(load_repository(root, settings.models), settings)
    assert app.tracing is not None
    exporter = InMemorySpanExporter()
    app.tracing.start(exporter=exporter)
    return app, exporter


def test_each_span_names_its_model() -> None:
    app, exporter = traced(SHOP, ModelsSettings(default="price"))
    try:
        client = app.test_client()
        answer = client.post(
            "/predict", json={"model": {"name": "scale", "version": "1.9"}, "input": {"x": 2}}
        )
        assert answer.status_code == 200
        answer = client.post("/models/price/predict", json={"input": {"x": 2}})
        assert answer.status_code == 200
        app.tracing.runtime.queue.force_flush()
        spans = exporter.get_finished_spans()
    finally:
        app.tracing.flush()
    requests = [s for s in spans if s.parent is None]
    assert len(requests) == 2
    models = []
    for request in requests:
        attributes = dict(request.attributes or {})
        model = (attributes["catwalk.model.name"], attributes["catwalk.model.version"])
        models.append(model)
        children = [s for s in spans if s.parent and s.parent.span_id == request.context.span_id]
        assert {c.name for c in children} == {
            "catwalk.validate_input",
            "predict",
            "catwalk.validate_output",
        }
        for child in children:
            named = dict(child.attributes or {})
            assert (named["catwalk.model.name"], named["catwalk.model.version"]) == model
    assert models == [("scale", "1.9"), ("price", "0.1")]
    assert [r.name for r in requests] == ["POST /predict", "POST /models/{name}/predict"]
    resource = requests[0].resource.attributes
    assert resource["service.name"] == "shop"  # the repository's folder
    assert "catwalk.model.name" not in resource


def test_a_shadow_run_is_a_child_of_its_request(make_repo: Callable[..., Path]) -> None:
    root = make_repo(("v1", "m", "1.0", {"factor": 1}), ("v2", "m", "2.0", {"factor": 3}))
    models = ModelsSettings(default="m", versions={"m": "1.0"}, shadow={"m": "2.0"})
    app, exporter = traced(root, models)
    try:
        client = app.test_client()
        parent = {"traceparent": f"00-{'e' * 32}-{'f' * 16}-01"}
        unsampled = {"traceparent": f"00-{'a' * 32}-{'f' * 16}-00"}
        for headers in (parent, unsampled):
            answer = client.post("/predict", json={"input": {"x": 2}}, headers=headers)
            assert answer.status_code == 200
        app.shadows.join()
        app.tracing.runtime.queue.force_flush()
        spans = exporter.get_finished_spans()
    finally:
        app.tracing.flush()
    (request,) = [s for s in spans if s.name == "POST /predict"]
    (shadow,) = [s for s in spans if s.name == "catwalk.shadow"]  # none for the unsampled
    assert shadow.parent is not None and request.context is not None
    assert shadow.parent.span_id == request.context.span_id
    assert format(shadow.context.trace_id, "032x") == "e" * 32
    attributes = dict(shadow.attributes or {})
    assert (attributes["catwalk.model.name"], attributes["catwalk.model.version"]) == ("m", "2.0")
    assert attributes["catwalk.shadow.outcome"] == "different"  # 3x against 1x
    assert shadow.start_time is not None and request.start_time is not None
    assert shadow.start_time > request.start_time


@pytest.mark.slow
def test_a_production_repository_exports_each_models_spans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers, `tracing:` in application.yml (no OTEL_* variable), a real OTLP endpoint."""
    receiver = HttpReceiver()
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "application.yml"
    config.write_text(
        "server: {workers: 2}\nmodels: {default: price}\n"
        f"tracing: {{enabled: true, endpoint: {receiver.endpoint}}}\n"
    )
    port = free_port()
    server = ServerProcess(SHOP, port=port, server_config=config)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, timeout=120, alive=server.alive)
        parent = {"traceparent": f"00-{'c' * 32}-{'d' * 16}-01"}
        body = {"model": {"name": "scale"}, "input": {"x": 2}}
        assert requests.post(url + "/predict", json=body, headers=parent, timeout=10).ok
        spans = receiver.wait_for(lambda got: len([s for s in got if s.trace_id == "c" * 32]) >= 4)
    finally:
        server.stop()
        server.close()
        receiver.stop()
    traced = [s for s in spans if s.trace_id == "c" * 32]
    (request,) = [s for s in traced if s.parent_span_id == "d" * 16]
    assert request.name == "POST /predict"
    assert (
        request.attributes["catwalk.model.name"],
        request.attributes["catwalk.model.version"],
    ) == (
        "scale",
        "1.10",
    )
    assert request.resource["service.name"] == "shop"
    steps = {s.name: s for s in traced if s.parent_span_id == request.span_id}
    assert set(steps) == {"catwalk.validate_input", "predict", "catwalk.validate_output"}
    assert steps["predict"].attributes["catwalk.model.version"] == "1.10"
