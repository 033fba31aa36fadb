"""A model repository's metrics, by model: what each ``name@version`` answered, and shadows.

Beside the server's own families (:mod:`catwalk.server.ops.metrics`, by endpoint), a repository
adds, all labelled ``name`` and ``version``:

- ``catwalk_model_requests_total{name,version,status}``: requests each model answered;
- ``catwalk_model_predict_duration_seconds{name,version}``: each model's own time;
- ``catwalk_shadow_total{name,version,outcome}``: shadow comparisons of the shadow model
  ``name@version``; ``outcome`` is ``same``, ``different`` or ``error`` (it raised, broke its
  schema, or was dropped because the shadow queue was full).

They live where the server's do (the same registry in debug mode, the multiprocess folder in
production), so ``/metrics`` sums them over every worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import Counter, Histogram

from catwalk.server.ops.metrics import DURATION_BUCKETS, Metrics, timed
from catwalk.spec import ModelSpec

SHADOW_OUTCOMES = ("same", "different", "error")


class ModelMetrics:
    """The per-model families, registered beside ``metrics``'s."""

    def __init__(
        self, metrics: Metrics, specs: Iterable[ModelSpec], shadows: Iterable[ModelSpec] = ()
    ) -> None:
        registry = None if metrics.multiprocess_dir else metrics.registry
        self.requests = Counter(
            "catwalk_model_requests_total",
            "Requests answered by each model of the repository, by HTTP status.",
            ["name", "version", "status"],
            registry=registry,
        )
        self.predict_duration = Histogram(
            "catwalk_model_predict_duration_seconds",
            "Time spent in each model's predict.",
            ["name", "version"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.shadow = Counter(
            "catwalk_shadow_total",
            "Shadow runs of each shadow model, by outcome (same, different, error).",
            ["name", "version", "outcome"],
            registry=registry,
        )
        self._counted: dict[tuple[str, str, str], Any] = {}
        for spec in specs:
            metrics.info.labels(spec.name, spec.version).set(1)
        for spec in shadows:
            for outcome in SHADOW_OUTCOMES:  # every outcome shown, 0 until it happens
                self.shadow.labels(spec.name, spec.version, outcome)

    def observe_request(self, name: str, version: str, status: str) -> None:
        key = (name, version, status)
        child = self._counted.get(key)
        if child is None:
            child = self._counted[key] = self.requests.labels(name, version, status)
        child.inc()

    def observe_shadow(self, name: str, version: str, outcome: str) -> None:
        self.shadow.labels(name, version, outcome).inc()

    def time_predict(self, spec: ModelSpec, predict: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``predict`` wrapped so that each call's duration is observed under its model."""
        return timed(predict, self.predict_duration.labels(spec.name, spec.version).observe)
