"""A repository's requests traced: each span names the model it is about (in process)."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from repo_fixtures import SHOP

from catwalk.config import ServerSettings
from catwalk.config_models import ModelsSettings
from catwalk.repository.load import load_repository
from catwalk.server.repository_app import create_repository_app
from catwalk.tracing.settings import TracingSettings


def test_each_span_names_its_model() -> None:
    settings = ServerSettings(
        workers=1, models=ModelsSettings(default="price"), tracing=TracingSettings(enabled=True)
    )
    app = create_repository_app(load_repository(SHOP, settings.models), settings)
    assert app.tracing is not None
    exporter = InMemorySpanExporter()
    app.tracing.start(exporter=exporter)
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
