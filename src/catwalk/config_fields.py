"""``application.yml``'s allowed keys, and readers that check one field, collecting problems.

Every reader appends a message to ``problems`` and returns a default instead of raising, so
that :func:`catwalk.config.parse_settings` can report every problem at once.
"""

from __future__ import annotations

from typing import Any

ALLOWED = {
    # models: checked by catwalk.config_models; tracing: by catwalk.tracing.settings
    "": {"logging", "server", "models", "tracing"},
    "logging": {"level", "format"},
    "server": {
        "workers",
        "preload",
        "threads_per_worker",
        "timeout",
        "keepalive",
        "max_body_size",
        "validate_output",
        "client_timeout",
        "max_connections_per_client",
        "trusted_proxies",
        "max_requests",
        "max_requests_jitter",
        "max_worker_memory",
        "graceful_timeout",
        "shutdown_delay",
        "metrics",
        "ssl",
        "limits",
        "auth",
        "batching",
    },
    "server.ssl": {"enabled", "cert", "key"},
    "server.limits": {"max_depth"},
    "server.auth": {"tokens_file"},
    "server.batching": {"enabled", "max_batch_size", "max_latency_ms"},
}


def check_keys(section: dict[str, Any], where: str, problems: list[str]) -> None:
    for key in section:
        if key not in ALLOWED[where]:
            dotted = f"{where}.{key}" if where else str(key)
            allowed = ", ".join(sorted(ALLOWED[where]))
            problems.append(f"{dotted}: unknown key (allowed: {allowed})")


def read_mapping(
    data: dict[str, Any], key: str, problems: list[str], prefix: str = ""
) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{prefix}{key}: must be a mapping")
        return {}
    return value


def read_int(data: dict[str, Any], key: str, default: int, low: int, problems: list[str]) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        problems.append(f"server.{key}: must be a whole number >= {low}")
        return default
    return value


def read_bool(
    data: dict[str, Any], key: str, default: bool, prefix: str, problems: list[str]
) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        problems.append(f"{prefix}{key}: must be true or false")
        return default
    return value
