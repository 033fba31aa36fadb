"""Spans made without the SDK's tracer where its work would change nothing (issue 23).

The SDK's tracer takes ~10-15 µs for a span and ~20-30 µs for a request's (sampler,
attribute checks, locks, the processor's hooks, the ``ReadableSpan`` copy at ``end()``),
against ~30 µs for rng's whole request (bench/RESULTS.md, in process). Two of its jobs are
decided before it starts:

- **A finished child of a sampled span** under catwalk's own sampler (parent-based: a
  sampled local parent's child is always sampled) and the default span limits is a
  :class:`~opentelemetry.sdk.trace.ReadableSpan` with known start and end: :meth:`Direct.ended`
  builds it (~3 µs) and gives it to catwalk's span queue, field for field what the SDK would
  have exported (tests/tracing/test_direct.py compares them).
- **A request without trace headers** is a root whose sampling is decided by its trace id
  alone (``TraceIdRatioBased``): :meth:`Direct.root` draws the id; unsampled, the request's
  span is a ``NonRecordingSpan`` of it (~1 µs instead of the extraction and the SDK's ~9 µs);
  sampled, the SDK makes the span with that very trace id (:class:`PresetIds`).
- **A request whose client did not sample its trace** is not sampled either (parent-based):
  :meth:`Direct.unsampled_child` makes its ``NonRecordingSpan`` in the client's trace (~1 µs
  instead of the SDK's ~7 µs), what upstream head sampling sends most requests as.

With ``OTEL_TRACES_SAMPLER`` set (another sampler), span limits that could cut an attribute
or ``OTEL_SDK_DISABLED``, :attr:`Runtime.direct <catwalk.tracing.provider.Runtime>` is None
and every span is the SDK's. A span made directly goes to catwalk's queue only, not to span
processors a model may have added to the provider, and is not counted in the SDK's own
span metrics (which need a meter provider catwalk does not set).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceFlags

from catwalk.tracing.queue import CountedQueue

UNSET = Status(StatusCode.UNSET)
MOST_ATTRIBUTES = 8  # a directly made span has at most this many (the limits must allow them)
_LOW_BITS = TraceIdRatioBased.TRACE_ID_LIMIT


class PresetIds(RandomIdGenerator):
    """The SDK's random ids; the next trace id of a thread may be drawn beforehand."""

    def __init__(self) -> None:
        self._next = threading.local()  # greenlet-local where gevent patched threading

    def preset(self, trace_id: int) -> None:
        """The next :meth:`generate_trace_id` of this thread returns ``trace_id``."""
        self._next.trace_id = trace_id

    def generate_trace_id(self) -> int:
        trace_id: int | None = self._next.__dict__.pop("trace_id", None)
        return super().generate_trace_id() if trace_id is None else trace_id


class Direct:
    """What spans are made directly with: the provider's resource, ids and scope, the
    queue, the root sampler's bound (see the module docstring)."""

    def __init__(
        self,
        resource: Resource,
        scope: InstrumentationScope,
        ids: PresetIds,
        queue: CountedQueue,
        ratio: float,
    ) -> None:
        self.resource = resource
        self.scope = scope
        self.ids = ids
        self.queue = queue
        self.bound = TraceIdRatioBased.get_bound_for_rate(ratio)
        random = TraceFlags.RANDOM_TRACE_ID if ids.is_trace_id_random() else 0
        self.unsampled_flags = TraceFlags(TraceFlags.DEFAULT | random)

    @staticmethod
    def allowed_by(limits: SpanLimits) -> bool:
        """Whether the SDK, under ``limits``, would keep every attribute and link as given."""
        return (
            limits.max_span_attribute_length is None
            and (limits.max_span_attributes or 0) >= MOST_ATTRIBUTES
            and (limits.max_links or 0) >= 1
        )

    def ended(
        self,
        name: str,
        parent: SpanContext,
        start_time: int,
        end_time: int,
        attributes: dict[str, Any] | None = None,
        status: Status = UNSET,
        links: Sequence[Link] = (),
    ) -> SpanContext:
        """A finished INTERNAL child of the sampled span ``parent``, queued; its context."""
        context = SpanContext(
            parent.trace_id,
            self.ids.generate_span_id(),
            False,
            parent.trace_flags,
            parent.trace_state,
        )
        self.queue.on_end(
            ReadableSpan(
                name=name,
                context=context,
                parent=parent,
                resource=self.resource,
                attributes=attributes,
                links=links,
                kind=SpanKind.INTERNAL,
                status=status,
                start_time=start_time,
                end_time=end_time,
                instrumentation_scope=self.scope,
            )
        )
        return context

    def unsampled_child(self, parent: Context) -> trace.Span | None:
        """The request's span when ``parent`` (extracted) is a client's unsampled span: a
        ``NonRecordingSpan`` in its trace, as the SDK's sampler would make it (None: any
        other parent, the SDK's to decide)."""
        context = trace.get_current_span(parent).get_span_context()
        if not context.is_valid or not context.is_remote or context.trace_flags.sampled:
            return None
        random = TraceFlags.RANDOM_TRACE_ID if context.trace_flags.random_trace_id else 0
        flags = TraceFlags(TraceFlags.DEFAULT | random)
        span_id = self.ids.generate_span_id()
        own = SpanContext(context.trace_id, span_id, False, flags, context.trace_state)
        return NonRecordingSpan(own)

    def root(self) -> trace.Span | None:
        """A new trace's unsampled span (None: sampled, its trace id preset for the SDK)."""
        trace_id = self.ids.generate_trace_id()
        if trace_id & _LOW_BITS < self.bound:
            self.ids.preset(trace_id)
            return None
        span_id = self.ids.generate_span_id()
        return NonRecordingSpan(SpanContext(trace_id, span_id, False, self.unsampled_flags))
