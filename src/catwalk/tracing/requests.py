"""The request's span: WSGI middleware around the app (:class:`TraceRequests`).

Its name and ``http.route`` are the route template (:func:`route_of`), never the raw path;
a client's ``traceparent``/``tracestate`` make it a child of the client's span. Under
catwalk's own sampler a request without trace headers has its trace id drawn here
(:meth:`catwalk.tracing.direct.Direct.root`), and one whose client did not sample its trace
is not sampled (:meth:`~catwalk.tracing.direct.Direct.unsampled_child`): unsampled, a
request costs a ``NonRecordingSpan`` and a context (its ids in the log lines), no
attributes (see :mod:`catwalk.tracing.spans`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, TextMapPropagator
from opentelemetry.trace import SpanKind, Status, StatusCode

from catwalk.protocol import paths
from catwalk.server.environ import (
    CORRELATION_ID_KEY,
    ERROR_MESSAGE_KEY,
    MODEL_KEY,
    StartResponse,
    WsgiApp,
    header_key,
)
from catwalk.tracing.spans import model_attributes

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
_NO_PARENT = Context()  # what extracting from a request without trace headers gives


class _EnvironGetter(Getter[dict[str, Any]]):
    """W3C headers out of a WSGI environ (``traceparent`` -> ``HTTP_TRACEPARENT``)."""

    def get(self, carrier: dict[str, Any], key: str) -> list[str] | None:
        value = carrier.get(header_key(key))
        return None if value is None else [value]

    def keys(self, carrier: dict[str, Any]) -> list[str]:
        return [k[5:].lower().replace("_", "-") for k in carrier if k.startswith("HTTP_")]


ENVIRON = _EnvironGetter()


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
        self._textmap: TextMapPropagator | None = None  # the propagator _headers are of
        self._headers: tuple[str, ...] = ()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in self.untraced:
            return self.app(environ, start_response)
        tracer = self.owner.tracer or self.owner.start()
        direct = self.owner.direct
        unsampled = None
        if direct is None or self._has_trace_headers(environ):
            parent = propagate.extract(environ, getter=ENVIRON)
            if direct is not None:  # a client's unsampled trace is followed here
                unsampled = direct.unsampled_child(parent)
        else:  # a new trace, sampled by its trace id: drawn here (tracing.direct)
            parent = _NO_PARENT
            unsampled = direct.root()
        if unsampled is not None:  # current for its ids in the log lines, nothing more
            token = otel_context.attach(trace.set_span_in_context(unsampled, parent))
            try:
                return self.app(environ, start_response)
            finally:
                otel_context.detach(token)
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

    def _has_trace_headers(self, environ: dict[str, Any]) -> bool:
        """Whether the request has a header the process's propagator reads (without one,
        extracting gives no parent)."""
        textmap = propagate.get_global_textmap()
        if textmap is not self._textmap:  # the first request, or a model set another one
            self._headers = tuple(header_key(field) for field in textmap.fields)
            self._textmap = textmap
        return not environ.keys().isdisjoint(self._headers)


def _answered(span: Any, line: str, environ: dict[str, Any]) -> None:
    """The request span's closing attributes: status, correlation id, the error's message."""
    code = int(line[:3]) if line[:3].isdigit() else 500
    closing: dict[str, Any] = {"http.response.status_code": code}
    correlation_id = environ.get(CORRELATION_ID_KEY)
    if correlation_id is not None:
        closing["catwalk.correlation_id"] = correlation_id
    model = environ.get(MODEL_KEY)  # a repository's: the model that answered
    if model is not None:
        closing.update(model_attributes(*model))
    message = environ.get(ERROR_MESSAGE_KEY)
    if message is not None:
        closing["catwalk.error.message"] = message
    if code >= 500:
        closing["error.type"] = str(code)
        span.set_status(Status(StatusCode.ERROR, message))
    span.set_attributes(closing)  # one call: the span's lock taken once
