"""The spans of a served request, and of the batches that carry several requests.

::

    POST /predict                  SERVER; the client's traceparent is its parent
    ├── catwalk.validate_input     the input against schema.input
    ├── catwalk.batch_wait         (batched) from joining the collector to the model call
    ├── predict | predict_batch    the model call; batched: one per batch, linking every
    │                              member request's span (and each member's batch_wait
    │                              links back to it)
    └── catwalk.validate_output    the output against schema.output

The model (``catwalk.model.name``, ``catwalk.model.version``) is on the resource, so on
every span; the request's span has the required stable HTTP semantic-convention attributes,
``http.route`` (the template, never the raw path), ``catwalk.correlation_id`` and, for an
error, the message of the JSON error (never the input). Attributes are few on purpose: the
OTLP exporter's encoding costs about 5 µs per attribute per span (bench/RESULTS.md).
Child spans are made only under a recording request span: an unsampled request
costs its request span and nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from time import time_ns
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, NonRecordingSpan, SpanKind, Status, StatusCode

from catwalk.protocol import paths
from catwalk.server.environ import (
    CORRELATION_ID_KEY,
    ERROR_MESSAGE_KEY,
    MODEL_KEY,
    StartResponse,
    WsgiApp,
)

_FIXED_ROUTES = (
    "/predict",
    "/info",
    "/openapi.json",
    "/docs",
    "/status",
    "/ready",
    "/metrics",
    "/models",
)
_MODELS = "/models/"  # a repository's /models/{name}[/versions/{version}]/predict
_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE")
)
_MAX_ROUTES = 64  # paths whose route template is remembered (a client cannot grow it further)
Member = tuple[trace.SpanContext, int]  # a batched request's span and when it joined (ns)


class _EnvironGetter(Getter[dict[str, Any]]):
    """W3C headers out of a WSGI environ (``traceparent`` -> ``HTTP_TRACEPARENT``)."""

    def get(self, carrier: dict[str, Any], key: str) -> list[str] | None:
        value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
        return None if value is None else [value]

    def keys(self, carrier: dict[str, Any]) -> list[str]:
        return [k[5:].lower().replace("_", "-") for k in carrier if k.startswith("HTTP_")]


ENVIRON = _EnvironGetter()


def model_attributes(name: str, version: str) -> dict[str, str]:
    """The attributes naming a model, on the spans of a repository's requests."""
    return {"catwalk.model.name": name, "catwalk.model.version": version}


def route_of(path: str) -> str | None:
    """The route template of ``path`` (``/v2/models/{model_name}/infer``), None if no route."""
    if path in _FIXED_ROUTES:
        return path
    if path.startswith("/docs/"):
        return "/docs/{name}"
    if path.startswith(_MODELS) and path.endswith("/predict") and len(path) > 16:
        versioned = "/versions/" in path[len(_MODELS) : -len("/predict")]
        return (
            "/models/{name}/versions/{version}/predict" if versioned else "/models/{name}/predict"
        )
    if not paths.is_v2(path):
        return None
    found = paths.route(path)
    if found is None:
        return None
    if found.name is None:
        return found.operation
    template = "/v2/models/{model_name}"
    if found.version is not None:
        template += "/versions/{model_version}"
    suffix = {paths.INFER: "/infer", paths.MODEL_READY: "/ready"}.get(found.operation, "")
    return template + suffix


class TraceRequests:
    """WSGI middleware: each request (but the untraced paths) in a SERVER span, current
    while the app answers it, so that child spans and log lines find it."""

    def __init__(self, app: WsgiApp, owner: Any) -> None:
        self.app = app
        self.owner = owner  # catwalk.tracing.Tracing: its tracer exists once started
        self.untraced = frozenset(owner.settings.untraced_paths)
        self._routes: dict[str, str | None] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in self.untraced:
            return self.app(environ, start_response)
        tracer = self.owner.tracer or self.owner.start()
        method = environ.get("REQUEST_METHOD", "")
        route = self._routes.get(path, "")
        if route == "":
            route = route_of(path)
            if len(self._routes) < _MAX_ROUTES:
                self._routes[path] = route
        known = method in _METHODS
        # The required attributes only: each costs the exporter about as much as a
        # validation of the request (bench/RESULTS.md, "Tracing").
        attributes: dict[str, Any] = {
            "http.request.method": method if known else "_OTHER",
            "url.path": path,
            "url.scheme": environ.get("wsgi.url_scheme", "http"),
        }
        if route is not None:
            attributes["http.route"] = route
        name = method if known else "HTTP"
        parent = propagate.extract(environ, getter=ENVIRON)
        span = tracer.start_span(
            f"{name} {route}" if route is not None else name,
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        status = ["500"]  # an exception that escapes the app becomes a 500

        def traced_start_response(line: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = line
            return start_response(line, headers, exc_info)

        try:
            return self.app(environ, traced_start_response)
        except BaseException as exc:
            if span.is_recording():
                span.set_attribute("error.type", type(exc).__qualname__)
            raise
        finally:
            if span.is_recording():
                _answered(span, status[0], environ)
            span.end()
            otel_context.detach(token)


def _answered(span: Any, line: str, environ: dict[str, Any]) -> None:
    """The request span's closing attributes: status, correlation id, the error's message."""
    code = int(line[:3]) if line[:3].isdigit() else 500
    span.set_attribute("http.response.status_code", code)
    correlation_id = environ.get(CORRELATION_ID_KEY)
    if correlation_id is not None:
        span.set_attribute("catwalk.correlation_id", correlation_id)
    model = environ.get(MODEL_KEY)  # a repository's: the model that answered
    if model is not None:
        span.set_attributes(model_attributes(*model))
    message = environ.get(ERROR_MESSAGE_KEY)
    if message is not None:
        span.set_attribute("catwalk.error.message", message)
    if code >= 500:
        span.set_attribute("error.type", str(code))
        span.set_status(Status(StatusCode.ERROR, message))


def child(
    owner: Any,
    name: str,
    call: Callable[..., Any],
    problems: bool = False,
    attributes: dict[str, Any] | None = None,
    current: bool = False,
) -> Any:
    """``call`` in a span named ``name``, when a recording span is current (else bare).

    ``problems``: ``call`` returns a list of problems (a validator): their count is recorded.
    ``current``: the span is the current one while ``call`` runs (the model's call: spans the
    model makes are its children); a validator's span is made when it returns, timed from its
    start, which costs half as much. The error of a call that raises is recorded by its type
    only (its message may quote the input; the request span has the message the client got).
    """
    fixed = attributes or None

    def made(*args: Any) -> Any:
        if not trace.get_current_span().is_recording():
            return call(*args)
        with owner.tracer.start_as_current_span(
            name, attributes=fixed, record_exception=False, set_status_on_exception=False
        ) as span:
            try:
                return call(*args)
            except Exception as exc:
                _failed(span, exc)
                raise

    def timed(*args: Any) -> Any:
        if not trace.get_current_span().is_recording():
            return call(*args)
        started = time_ns()
        try:
            result = call(*args)
        except Exception as exc:
            _failed(owner.tracer.start_span(name, start_time=started), exc).end()
            raise
        span = owner.tracer.start_span(name, start_time=started, attributes=fixed)
        if problems and result:
            span.set_attribute("catwalk.validation.problems", len(result))
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        return result

    traced = made if current else timed
    traced.__wrapped__ = call  # type: ignore[attr-defined]
    return traced


def _failed(span: Any, exc: BaseException) -> Any:
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR))
    return span


class BatchTrace:
    """The batching collector's hooks (:class:`catwalk.server.batching.Batcher`'s ``trace``)."""

    def __init__(self, owner: Any, call_name: str, named: dict[str, str] | None = None) -> None:
        self.owner = owner
        self.call_name = call_name  # predict_batch, or predict (rows joined)
        self.named = named or {}  # a repository's model

    @staticmethod
    def member() -> Member | None:
        """In the request, as it joins the collector: its span, and when (None: unsampled)."""
        span = trace.get_current_span()
        if not span.is_recording():
            return None
        return span.get_span_context(), time_ns()

    def run(
        self,
        run: Callable[[list[Any]], list[Any]],
        inputs: list[Any],
        members: list[Member | None],
    ) -> list[Any]:
        """``run(inputs)`` in one model-call span linking every sampled member's span; each
        member gets its ``catwalk.batch_wait`` span, linking back to the call."""
        sampled = [m for m in members if m is not None]
        if not sampled:
            return run(inputs)
        tracer = self.owner.tracer
        started = time_ns()
        size = len(inputs)
        attributes = {**self.named, "catwalk.batch.size": size}
        # A child of the first sampled member (so it is sampled with it), linked to them all.
        first = trace.set_span_in_context(NonRecordingSpan(sampled[0][0]))
        call = tracer.start_span(
            self.call_name,
            context=first,
            links=[Link(span) for span, _ in sampled],
            attributes=attributes,
            start_time=started,
            record_exception=False,
            set_status_on_exception=False,
        )
        back = [Link(call.get_span_context())]
        for span, joined in sampled:
            tracer.start_span(
                "catwalk.batch_wait",
                context=trace.set_span_in_context(NonRecordingSpan(span)),
                links=back,
                start_time=joined,
            ).end(end_time=started)
        token = otel_context.attach(trace.set_span_in_context(call))
        try:
            return run(inputs)
        except Exception as exc:
            call.set_attribute("error.type", type(exc).__qualname__)
            call.set_status(Status(StatusCode.ERROR))
            raise
        finally:
            otel_context.detach(token)
            call.end()
