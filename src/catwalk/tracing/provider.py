"""One process's OpenTelemetry SDK: tracer provider, sampler, OTLP exporter, bounded queue.

Built in the process that makes the spans, after any fork: the SDK's export thread does not
survive a fork, and a thread started in gunicorn's preloading master would make catwalk load
the model in every worker instead (:mod:`catwalk.server.production.threads`). The standard
variables are the SDK's to read (endpoint, headers, timeout, certificates, sampler,
resource); the ``tracing:`` keys of ``application.yml`` stand in only for those unset.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Attributes, Resource
from opentelemetry.sdk.trace import SpanLimits, Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from catwalk import __version__
from catwalk.server.logs import LOGGER_NAME
from catwalk.tracing.direct import Direct, PresetIds
from catwalk.tracing.queue import CountedQueue
from catwalk.tracing.settings import TracingSettings

SCOPE = "catwalk"
# Where the exporters send by default (the SDK's defaults, named in messages).
DEFAULT_ENDPOINTS = {"http/protobuf": "http://localhost:4318", "grpc": "http://localhost:4317"}
TRACES_PATH = "/v1/traces"


@dataclass
class Runtime:
    """What one process traces with."""

    provider: TracerProvider
    tracer: trace.Tracer
    queue: CountedQueue
    endpoint: str
    # Spans made without the tracer where that changes nothing (None: catwalk's sampler is
    # not in force, or the span limits could cut an attribute; catwalk.tracing.direct).
    direct: Direct | None = None

    def flush(self, budget: float) -> bool:
        """Export what waits and stop, within ``budget`` seconds (False: not all sent).

        The SDK's flush does not honour its timeout (an unreachable endpoint retries for the
        exporter's own), so it runs in a thread this waits for at most ``budget``; whatever is
        left then is lost with the process, which is about to end.
        """
        done = threading.Event()

        def stop() -> None:
            try:
                self.queue.force_flush()
                self.provider.shutdown()
            finally:
                done.set()

        threading.Thread(target=stop, name="catwalk-trace-flush", daemon=True).start()
        return done.wait(budget)


def endpoint_in_force(settings: TracingSettings, protocol: str) -> str:
    """The URL spans go to: the variables, then ``tracing.endpoint``, then the SDK default."""
    traces = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces:
        return traces
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or settings.endpoint
    base = base or DEFAULT_ENDPOINTS[protocol]
    return base.rstrip("/") + TRACES_PATH if protocol == "http/protobuf" else base


def start_runtime(
    settings: TracingSettings,
    name: str,
    model: tuple[str, str] | None,
    dropped: Callable[[int], None],
    exporter: SpanExporter | None = None,
) -> Runtime:
    """This process's provider and exporter (see the module docstring): ``name`` is the
    default service name, ``model`` the one model served (None: a repository's, which its
    spans name each); ``exporter`` replaces the OTLP one (tests: the in-memory exporter)."""
    protocol = settings.protocol_in_force()
    endpoint = endpoint_in_force(settings, protocol)
    if exporter is None:
        exporter = _exporter(protocol, endpoint)
    else:
        endpoint = type(exporter).__name__
    queue = CountedQueue(exporter, settings.max_queue_size, dropped, endpoint)
    sampler = _sampler(settings)
    limits = SpanLimits()  # what the provider would read itself (OTEL_SPAN_*_LIMIT...)
    ids = PresetIds()
    resource = _resource(settings, name, model)
    provider = TracerProvider(
        sampler=sampler,
        resource=resource,
        shutdown_on_exit=False,  # the owner flushes, within the drain (Runtime.flush)
        id_generator=ids,
        span_limits=limits,
    )
    provider.add_span_processor(queue)
    tracer = provider.get_tracer(SCOPE, __version__)
    direct = None  # not with another sampler, limits that cut, or OTEL_SDK_DISABLED
    if sampler is not None and Direct.allowed_by(limits) and isinstance(tracer, Tracer):
        scope = InstrumentationScope(SCOPE, __version__)
        direct = Direct(provider.resource, scope, ids, queue, settings.sample_ratio)
    # Spans a model makes with the OpenTelemetry API join catwalk's (the global provider can
    # be set once per process: a second app in one process, in tests, keeps the first).
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    logging.getLogger(LOGGER_NAME).info(
        "tracing: spans of worker %d go to %s (%s)", os.getpid(), endpoint, protocol
    )
    return Runtime(provider, tracer, queue, endpoint, direct)


def _exporter(protocol: str, endpoint: str) -> SpanExporter:
    # Given explicitly only when no variable names it: the SDK reads them itself otherwise
    # (and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is taken as the whole URL, as the SDK does).
    named = any(
        os.environ.get(name, "").strip()
        for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter(endpoint=None if named else endpoint)  # http:// -> insecure
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter(endpoint=None if named else endpoint)


def _sampler(settings: TracingSettings) -> Sampler | None:
    """Parent-based at ``tracing.sample_ratio``, unless OTEL_TRACES_SAMPLER says (None)."""
    if os.environ.get("OTEL_TRACES_SAMPLER", "").strip():
        return None  # the SDK reads OTEL_TRACES_SAMPLER and _ARG
    return ParentBased(TraceIdRatioBased(settings.sample_ratio))


def _resource(
    settings: TracingSettings, name: str, model: tuple[str, str] | None
) -> HashedResource:
    """The SDK's resource (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME...) with the model and
    this process's pid; the service name is the model's (or tracing.service_name) unless a
    variable names one."""
    named = os.environ.get("OTEL_SERVICE_NAME", "").strip() or any(
        item.split("=", 1)[0].strip() == SERVICE_NAME
        for item in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(",")
    )
    resource = Resource.create({})
    # The model on every span: on the resource, sent once per export rather than per span.
    ours: dict[str, str | int] = {}
    if model is not None:
        ours["catwalk.model.name"], ours["catwalk.model.version"] = model
    if not named:
        ours[SERVICE_NAME] = settings.service_name or name
    if "process.pid" not in resource.attributes:  # which worker made a span
        ours["process.pid"] = os.getpid()
    merged = resource.merge(Resource(ours))
    return HashedResource(dict(merged.attributes), merged.schema_url)


class HashedResource(Resource):
    """A Resource whose hash is computed once: the OTLP exporter groups each span by its
    resource (a dict key), and the SDK's ``__hash__`` serialises the attributes to JSON
    every time, ~5 µs a span of ~25 (bench/tracing.py). A Resource is immutable."""

    def __init__(self, attributes: Attributes, schema_url: str | None = None) -> None:
        super().__init__(attributes, schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash
