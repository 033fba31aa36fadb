"""The spans of a served request, and of the batches that carry several requests.

::

    POST /predict                  SERVER; the client's traceparent is its parent
    ├── catwalk.validate_input     the input against schema.input
    ├── catwalk.batch_wait         (batched) from joining the collector to the model call
    ├── predict | predict_batch    the model call; batched: one per batch, linking every
    │                              member request's span (and each member's batch_wait
    │                              links back to it)
    ├── catwalk.validate_output    the output against schema.output
    └── catwalk.shadow             (a repository's shadow) its run, after the answer

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
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, TextMapPropagator
from opentelemetry.sdk.trace import Span as SdkSpan
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
_NO_PARENT = Context()  # what extracting from a request without trace headers gives
_ERROR = Status(StatusCode.ERROR)
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
        self._textmap: TextMapPropagator | None = None  # the propagator _headers are of
        self._headers: tuple[str, ...] = ()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in self.untraced:
            return self.app(environ, start_response)
        tracer = self.owner.tracer or self.owner.start()
        direct = self.owner.direct
        if direct is None or self._has_trace_headers(environ):
            parent = propagate.extract(environ, getter=ENVIRON)
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
            self._headers = tuple("HTTP_" + f.upper().replace("-", "_") for f in textmap.fields)
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
        # start_as_current_span's work without its context manager (a few µs less)
        span = owner.tracer.start_span(
            name, attributes=fixed, record_exception=False, set_status_on_exception=False
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            return call(*args)
        except Exception as exc:
            _failed(span, exc)
            raise
        finally:
            otel_context.detach(token)
            span.end()

    def timed(*args: Any) -> Any:
        parent = trace.get_current_span()
        if not parent.is_recording():
            return call(*args)
        direct = owner.direct if isinstance(parent, SdkSpan) else None
        started = time_ns()
        try:
            result = call(*args)
        except Exception as exc:
            if direct is not None:
                failed = {"error.type": type(exc).__qualname__}
                direct.ended(name, parent.get_span_context(), started, time_ns(), failed, _ERROR)
            else:
                _failed(owner.tracer.start_span(name, start_time=started), exc).end()
            raise
        if direct is not None:
            if problems and result:
                counted = {**(fixed or {}), "catwalk.validation.problems": len(result)}
                direct.ended(name, parent.get_span_context(), started, time_ns(), counted, _ERROR)
            else:
                direct.ended(name, parent.get_span_context(), started, time_ns(), fixed)
            return result
        span = owner.tracer.start_span(name, start_time=started, attributes=fixed)
        if problems and result:
            span.set_attribute("catwalk.validation.problems", len(result))
            span.set_status(_ERROR)
        span.end()
        return result

    traced = made if current else timed
    traced.__wrapped__ = call  # type: ignore[attr-defined]
    return traced


def _failed(span: Any, exc: BaseException) -> Any:
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(_ERROR)
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
        direct = self.owner.direct if isinstance(call, SdkSpan) else None
        for span, joined in sampled:
            if direct is not None:
                direct.ended("catwalk.batch_wait", span, joined, started, links=back)
                continue
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
            call.set_status(_ERROR)
            raise
        finally:
            otel_context.detach(token)
            call.end()


class ShadowTrace:
    """The shadow thread's hooks (:class:`catwalk.server.shadow.ShadowRunner`'s ``trace``):
    a sampled request's shadow run in a ``catwalk.shadow`` span, a child of the request's
    (ended by then), current while the shadow model runs."""

    def __init__(self, owner: Any) -> None:
        self.owner = owner

    @staticmethod
    def member() -> trace.SpanContext | None:
        """In the request, as it hands its answer over: its span (None: unsampled)."""
        span = trace.get_current_span()
        return span.get_span_context() if span.is_recording() else None

    def run(self, request: trace.SpanContext, spec: Any, compare: Callable[[], str]) -> str:
        """``compare()`` (returns the outcome: same, different, error) in the span."""
        tracer = self.owner.tracer
        if tracer is None:  # stopped meanwhile
            return compare()
        span = tracer.start_span(
            "catwalk.shadow",
            context=trace.set_span_in_context(NonRecordingSpan(request)),
            attributes=model_attributes(spec.name, spec.version),
            record_exception=False,
            set_status_on_exception=False,
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            outcome = compare()
            span.set_attribute("catwalk.shadow.outcome", outcome)
            if outcome == "error":
                span.set_status(_ERROR)
            return outcome
        finally:
            otel_context.detach(token)
            span.end()
