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

The request's span is :mod:`catwalk.tracing.requests`'s; the others are made here. The model
(``catwalk.model.name``, ``catwalk.model.version``) is on the resource, so on
every span; the request's span has the required stable HTTP semantic-convention attributes,
``http.route`` (the template, never the raw path), ``catwalk.correlation_id`` and, for an
error, the message of the JSON error (never the input). Attributes are few on purpose: the
OTLP exporter's encoding costs ~3 µs per attribute per span, on top of ~8 µs per span
(bench/RESULTS.md, in process).

What each costs (in process, rng, bench/tracing.py and bench/RESULTS.md): the SDK's tracer
takes ~10-13 µs for a span (sampler, attribute checks, locks, the ``ReadableSpan`` copy at
``end()``), ~20-30 µs for the request's with its attributes. So, under catwalk's sampler
(:mod:`catwalk.tracing.direct`):

- the request span is the SDK's: it is current while catwalk answers, and what a client
  sent (``traceparent``) is the SDK's to continue; a request without trace headers has its
  trace id drawn first, and an unsampled one gets a ``NonRecordingSpan`` (~1 µs);
- the validation and ``catwalk.batch_wait`` spans are made when their step is over, from
  known start and end times, directly as ``ReadableSpan`` (~3 µs each instead of ~13);
- the model call's span stays the SDK's: it is the current span while the model runs, so
  spans the model makes are its children and ``trace.get_current_span()`` in the model is a
  real recording span (``set_attribute`` works); the SDK refuses a ``Span`` not made by its
  tracer (TypeError), and a ``NonRecordingSpan`` stand-in would drop what the model records,
  so it is started with ``start_span`` and made current by hand (~16 µs;
  ``start_as_current_span``'s context manager adds ~3);
- children are made only under a recording span: an unsampled request costs its request
  span, a context, and a look at the current span per step.
"""

from __future__ import annotations

from collections.abc import Callable
from time import time_ns
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.trace import Link, NonRecordingSpan, Status, StatusCode

_ERROR = Status(StatusCode.ERROR)
Member = tuple[trace.SpanContext, int]  # a batched request's span and when it joined (ns)


def model_attributes(name: str, version: str) -> dict[str, str]:
    """The attributes naming a model, on the spans of a repository's requests."""
    return {"catwalk.model.name": name, "catwalk.model.version": version}


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
