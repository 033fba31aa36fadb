"""``tracing:`` in ``application.yml`` and the standard ``OTEL_*`` variables -> TracingSettings.

```yaml
tracing:
  enabled: false             # or OTEL_TRACES_EXPORTER=otlp (none: off); OTEL_SDK_DISABLED=true: off
  endpoint: http://collector:4318   # OTEL_EXPORTER_OTLP_ENDPOINT; its /v1/traces for HTTP
  protocol: http/protobuf    # or grpc; OTEL_EXPORTER_OTLP_PROTOCOL
  service_name: null         # OTEL_SERVICE_NAME; default: the model's name
  sample_ratio: 1.0          # parent-based ratio; OTEL_TRACES_SAMPLER / _ARG
  untraced_paths: [/status, /ready, /metrics]
  max_queue_size: 2048       # spans waiting for the exporter; more are dropped and counted
```
As everywhere in catwalk, a variable that is set wins over the file: each key above is used
only when its variable is unset (the SDK reads the variables itself, and
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``,
``OTEL_RESOURCE_ATTRIBUTES``... too). Everything is checked here, where ``catwalk serve``
reads its settings, so a typo stops the server before it starts rather than leaving tracing
silently off. Nothing here imports OpenTelemetry.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PROTOCOLS = ("http/protobuf", "grpc")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
DEFAULT_UNTRACED = ("/status", "/ready", "/metrics")
DEFAULT_QUEUE = 2048
KEYS = {
    "enabled",
    "endpoint",
    "protocol",
    "service_name",
    "sample_ratio",
    "untraced_paths",
    "max_queue_size",
}
INSTALL = "pip install 'catwalk-serve[tracing]'"
# The SDK's module for each protocol (checked without importing it).
_EXPORTERS = {
    "http/protobuf": "opentelemetry.exporter.otlp.proto.http",
    "grpc": "opentelemetry.exporter.otlp.proto.grpc",
}


@dataclass(frozen=True)
class TracingSettings:
    """Where spans go and which are made; ``enabled`` False means none, and no SDK at all.

    The fields hold what the file says; a variable that is set overrides each at run time
    (:meth:`protocol_in_force`, the SDK's own reading of the endpoint, sampler, service name).
    """

    enabled: bool = False
    endpoint: str | None = None
    protocol: str = "http/protobuf"
    service_name: str | None = None
    sample_ratio: float = 1.0
    untraced_paths: tuple[str, ...] = DEFAULT_UNTRACED
    max_queue_size: int = DEFAULT_QUEUE

    def protocol_in_force(self, env: Mapping[str, str] | None = None) -> str:
        env = os.environ if env is None else env
        for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            value = env.get(name, "").strip()
            if value:
                return value
        return self.protocol


def read_tracing(
    section: dict[str, Any], problems: list[str], env: Mapping[str, str] | None = None
) -> TracingSettings:
    """The ``tracing:`` section (already a mapping) with the variables over it; every problem
    is appended to ``problems`` (``tracing.key: ...`` or ``VARIABLE: ...``)."""
    env = os.environ if env is None else env
    for key in section:
        if key not in KEYS:
            problems.append(f"tracing.{key}: unknown key (allowed: {', '.join(sorted(KEYS))})")
    defaults = TracingSettings()
    enabled = section.get("enabled", False)
    if not isinstance(enabled, bool):
        problems.append("tracing.enabled: must be true or false")
        enabled = False
    enabled = _enabled_by_env(enabled, env, problems)
    endpoint = section.get("endpoint")
    if endpoint is not None and not _is_url(endpoint):
        problems.append("tracing.endpoint: must be an http:// or https:// URL")
        endpoint = None
    protocol = section.get("protocol", defaults.protocol)
    if protocol not in PROTOCOLS:
        problems.append(f"tracing.protocol: must be one of {', '.join(PROTOCOLS)}")
        protocol = defaults.protocol
    service_name = section.get("service_name")
    if service_name is not None and (not isinstance(service_name, str) or not service_name):
        problems.append("tracing.service_name: must be a non-empty string")
        service_name = None
    ratio = section.get("sample_ratio", 1.0)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
        problems.append("tracing.sample_ratio: must be a number from 0 to 1")
        ratio = 1.0
    untraced = section.get("untraced_paths", list(DEFAULT_UNTRACED))
    if not isinstance(untraced, list) or not all(
        isinstance(p, str) and p.startswith("/") for p in untraced
    ):
        problems.append("tracing.untraced_paths: must be a list of paths such as /status")
        untraced = list(DEFAULT_UNTRACED)
    queue = section.get("max_queue_size", DEFAULT_QUEUE)
    if isinstance(queue, bool) or not isinstance(queue, int) or queue < 1:
        problems.append("tracing.max_queue_size: must be a whole number >= 1")
        queue = DEFAULT_QUEUE
    settings = TracingSettings(
        enabled=enabled,
        endpoint=endpoint,
        protocol=protocol,
        service_name=service_name,
        sample_ratio=float(ratio),
        untraced_paths=tuple(untraced),
        max_queue_size=queue,
    )
    if enabled:
        _check_env(settings, env, problems)
    return settings


def _enabled_by_env(enabled: bool, env: Mapping[str, str], problems: list[str]) -> bool:
    """``OTEL_SDK_DISABLED`` and ``OTEL_TRACES_EXPORTER`` over ``tracing.enabled``."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not exporter:
        return enabled
    if exporter == "otlp":
        return True
    if exporter == "none":
        return False
    problems.append(
        f"OTEL_TRACES_EXPORTER: {exporter!r} is not supported (catwalk exports with otlp; "
        "none turns tracing off)"
    )
    return False


def _check_env(settings: TracingSettings, env: Mapping[str, str], problems: list[str]) -> None:
    """The standard variables catwalk's spans depend on, checked before anything starts."""
    protocol = settings.protocol_in_force(env)
    if protocol not in PROTOCOLS:
        name = (
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
            if env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "").strip()
            else "OTEL_EXPORTER_OTLP_PROTOCOL"
        )
        problems.append(f"{name}: {protocol!r} is not supported (use {' or '.join(PROTOCOLS)})")
    sampler = env.get("OTEL_TRACES_SAMPLER", "").strip().lower()
    if sampler and sampler not in SAMPLERS:
        problems.append(f"OTEL_TRACES_SAMPLER: {sampler!r} is not one of {', '.join(SAMPLERS)}")
    arg = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if arg and sampler.endswith("traceidratio"):
        try:
            ratio = float(arg)
        except ValueError:
            ratio = math.nan
        if not 0 <= ratio <= 1:
            problems.append(f"OTEL_TRACES_SAMPLER_ARG: {arg!r} is not a ratio from 0 to 1")
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        value = env.get(name, "").strip()
        if value and not _is_url(value):
            problems.append(f"{name}: {value!r} is not an http:// or https:// URL")
    if importlib.util.find_spec("opentelemetry") is None or (
        importlib.util.find_spec("opentelemetry.sdk") is None
    ):
        problems.append(f"tracing is on but the OpenTelemetry SDK is not installed ({INSTALL})")
    elif protocol in _EXPORTERS and importlib.util.find_spec(_EXPORTERS[protocol]) is None:
        problems.append(
            f"tracing is on with protocol {protocol} but its OTLP exporter is not installed "
            f"({INSTALL})"
        )


def _is_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) > 8
