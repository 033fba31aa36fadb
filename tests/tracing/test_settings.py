"""tracing: in application.yml, the OTEL_* variables over it, and the per-process SDK they build."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased

from catwalk.config import load_settings
from catwalk.errors import ConfigError
from catwalk.tracing import provider
from catwalk.tracing.queue import CountedQueue
from catwalk.tracing.settings import TracingSettings

OTEL = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_SDK_DISABLED",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
)


@pytest.fixture(autouse=True)
def no_otel(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL:
        monkeypatch.delenv(name, raising=False)


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "application.yml"
    path.write_text(text)
    return path


def test_off_by_default(tmp_path: Path) -> None:
    assert load_settings(None).tracing == TracingSettings()
    assert not load_settings(config(tmp_path, "server: {workers: 1}\n")).tracing.enabled


def test_the_section_is_read(tmp_path: Path) -> None:
    text = (
        "tracing:\n  enabled: true\n  endpoint: http://collector:4318\n  protocol: grpc\n"
        "  service_name: scoring\n  sample_ratio: 0.25\n  untraced_paths: [/status]\n"
        "  max_queue_size: 64\n"
    )
    found = load_settings(config(tmp_path, text)).tracing
    assert found == TracingSettings(
        enabled=True,
        endpoint="http://collector:4318",
        protocol="grpc",
        service_name="scoring",
        sample_ratio=0.25,
        untraced_paths=("/status",),
        max_queue_size=64,
    )


def test_every_problem_is_named(tmp_path: Path) -> None:
    text = (
        "tracing:\n  enabled: yes please\n  endpont: x\n  endpoint: collector:4318\n"
        "  protocol: http/json\n  sample_ratio: 2\n  untraced_paths: status\n  max_queue_size: 0\n"
    )
    path = config(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    lines = str(info.value).splitlines()
    for expected in (
        "tracing.endpont: unknown key (allowed: enabled, endpoint, max_queue_size, protocol",
        "tracing.enabled: must be true or false",
        "tracing.endpoint: must be an http:// or https:// URL",
        "tracing.protocol: must be one of http/protobuf, grpc",
        "tracing.sample_ratio: must be a number from 0 to 1",
        "tracing.untraced_paths: must be a list of paths",
        "tracing.max_queue_size: must be a whole number >= 1",
    ):
        assert any(line.startswith(f"{path}: {expected}") for line in lines), (expected, lines)


def test_the_standard_variable_turns_it_on_and_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    assert load_settings(None).tracing.enabled  # no application.yml at all
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert not load_settings(config(tmp_path, "tracing: {enabled: true}\n")).tracing.enabled
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not load_settings(None).tracing.enabled


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER: 'zipkin' is not supported"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json'"),
        ("OTEL_TRACES_SAMPLER", "sometimes", "OTEL_TRACES_SAMPLER: 'sometimes' is not one of"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "OTEL_EXPORTER_OTLP_ENDPOINT: "),
    ],
)
def test_a_bad_variable_stops_the_server_before_it_starts(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings(None)


def test_a_bad_sampler_ratio_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "5%")
    with pytest.raises(ConfigError, match="OTEL_TRACES_SAMPLER_ARG: '5%' is not a ratio"):
        load_settings(None)


def test_variables_win_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = TracingSettings(
        enabled=True, endpoint="http://file:4318", protocol="grpc", service_name="from-file"
    )
    assert provider.endpoint_in_force(settings, "http/protobuf") == "http://file:4318/v1/traces"
    assert provider.endpoint_in_force(settings, "grpc") == "http://file:4318"
    assert settings.protocol_in_force() == "grpc"
    assert (
        provider._resource(settings, "Model", ("Model", "1")).attributes["service.name"]
        == "from-file"
    )
    assert isinstance(provider._sampler(settings), ParentBased)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4318/")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert settings.protocol_in_force() == "http/protobuf"
    assert provider.endpoint_in_force(settings, "http/protobuf") == "http://env:4318/v1/traces"
    assert (
        provider._resource(settings, "Model", ("Model", "1")).attributes["service.name"]
        == "from-env"
    )
    assert provider._sampler(settings) is None  # the SDK reads OTEL_TRACES_SAMPLER itself
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=attrs,team=ml")
    resource = provider._resource(settings, "Model", ("Model", "1")).attributes
    assert (resource["service.name"], resource["team"]) == ("attrs", "ml")


def test_the_service_name_defaults_to_the_models() -> None:
    resource = provider._resource(TracingSettings(enabled=True), "RNGModel", ("RNGModel", "0.0.1"))
    assert resource.attributes["service.name"] == "RNGModel"
    assert resource.attributes["catwalk.model.name"] == "RNGModel"
    assert resource.attributes["catwalk.model.version"] == "0.0.1"


class Stuck(SpanExporter):
    """An exporter that does not come back until told: a collector that hangs."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(10)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_a_full_queue_drops_counts_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    exporter = Stuck()
    counted: list[int] = []
    queue = CountedQueue(exporter, 4, counted.append, "http://stuck:4318/v1/traces")
    tracer_provider = TracerProvider(shutdown_on_exit=False)
    tracer_provider.add_span_processor(queue)
    tracer = tracer_provider.get_tracer("test")
    with caplog.at_level(logging.WARNING, logger="catwalk.server"):
        for i in range(50):
            tracer.start_span(f"span {i}").end()
    assert queue.waiting() <= 4
    assert queue.dropped >= 46 - 4  # at most one batch of 4 is in the stuck exporter
    assert sum(counted) == queue.dropped
    warnings = [r for r in caplog.records if "spans are dropped" in r.getMessage()]
    assert len(warnings) == 1
    assert "http://stuck:4318/v1/traces" in warnings[0].getMessage()
    exporter.release.set()
    queue.force_flush()
    assert exporter.exported == 50 - queue.dropped
    tracer_provider.shutdown()


def test_the_flush_fits_in_a_stopping_workers_exit() -> None:
    from catwalk.server.production.render import GRACEFUL_TIMEOUT
    from catwalk.tracing.server import MAX_FLUSH, Tracing

    # gunicorn kills a worker GRACEFUL_TIMEOUT s after telling it to stop: the flush at its
    # exit must end before, whatever server.graceful_timeout is.
    assert MAX_FLUSH + 1.0 <= GRACEFUL_TIMEOUT
    for drain in (1, 10, 30, 600):
        budget = Tracing(TracingSettings(enabled=True), "m", drain).flush_budget
        assert 0.5 <= budget <= MAX_FLUSH
