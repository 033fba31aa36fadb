"""The environment-variable layer over ``application.yml``: what containers set most.

``SERVER_WORKERS``, ``SERVER_THREADS_PER_WORKER``, ``SERVER_TIMEOUT``,
``SERVER_TRUSTED_PROXIES`` (comma-separated), ``LOG_LEVEL``, ``LOG_FORMAT``
(:data:`ENV_SETTINGS`) and ``SERVER_AUTH_TOKENS_FILE`` (:data:`TOKENS_ENV`); :mod:`catwalk.config`
applies them.
"""

from __future__ import annotations

import os
from typing import Any

from catwalk.errors import ConfigError

TOKENS_ENV = "SERVER_AUTH_TOKENS_FILE"
#: Variable -> (section, key) of application.yml. Precedence: a command-line flag (none of
#: these has one) > the variable > application.yml > the default. Empty means unset.
ENV_SETTINGS = {
    "SERVER_WORKERS": ("server", "workers"),
    "SERVER_THREADS_PER_WORKER": ("server", "threads_per_worker"),
    "SERVER_TIMEOUT": ("server", "timeout"),
    "SERVER_TRUSTED_PROXIES": ("server", "trusted_proxies"),
    "LOG_LEVEL": ("logging", "level"),
    "LOG_FORMAT": ("logging", "format"),
}


def env_settings(data: Any) -> Any:
    """Parsed application.yml ``data`` with the ENV_SETTINGS variables that are set over it."""
    if not isinstance(data, dict):
        return data  # parse_settings says what is wrong with it
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for name, (section, key) in ENV_SETTINGS.items():
        text = os.environ.get(name, "").strip()
        if not text:
            continue
        value: object = text
        if key in ("workers", "threads_per_worker", "timeout"):
            if not text.isdigit() or int(text) < 1:
                raise ConfigError(f"{name}: {text!r} is not a whole number >= 1")
            value = int(text)
        if merged.get(section) is None:
            merged[section] = {}
        if isinstance(merged[section], dict):
            merged[section][key] = value
    return merged
