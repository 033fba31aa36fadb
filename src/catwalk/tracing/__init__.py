"""OpenTelemetry tracing of a served model (issue 23; docs/observability.md).

Off unless ``tracing.enabled`` or ``OTEL_TRACES_EXPORTER=otlp``: then nothing of OpenTelemetry
is imported and a request does no tracing work at all. On, :mod:`catwalk.tracing.server` owns
the hooks and the process's SDK (:mod:`catwalk.tracing.provider`, its bounded queue
:mod:`catwalk.tracing.queue`), :mod:`catwalk.tracing.requests` makes the request's span,
:mod:`catwalk.tracing.spans` its steps' (some directly, :mod:`catwalk.tracing.direct`) and
:mod:`catwalk.tracing.logs` puts their ids in the log lines. :mod:`catwalk.tracing.settings`
reads the settings (and imports nothing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from catwalk.config import ServerSettings
    from catwalk.spec import ModelSpec
    from catwalk.tracing.server import Tracing


def tracing_for(
    settings: ServerSettings,
    spec: ModelSpec,
    metrics: Any,
    repository: bool = False,
    name: str | None = None,
) -> Tracing | None:
    """The app's tracing when ``settings`` turn it on (None: off, nothing imported): of the
    model ``spec``, or of a repository (named ``name``) whose default model is ``spec``."""
    if not settings.tracing.enabled:
        return None
    try:
        from catwalk.tracing.server import Tracing
    except ImportError as exc:  # e.g. a model's environment without the SDK
        from catwalk.errors import ConfigError
        from catwalk.tracing.settings import INSTALL

        raise ConfigError(
            f"tracing is on but OpenTelemetry cannot be imported ({exc}): {INSTALL}, or add "
            "its packages to the model's requirements.txt"
        ) from None
    model = None if repository else (spec.name, spec.version)
    tracing = Tracing(settings.tracing, name or spec.name, float(settings.graceful_timeout), model)
    if metrics is not None:
        tracing.count_drops_in(metrics)
    return tracing
