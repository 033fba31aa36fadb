"""``application.yml`` (the server configuration) -> frozen, typed :class:`ServerSettings`.

```yaml
logging:
  level: INFO              # DEBUG | INFO | WARNING | ERROR
server:
  workers: 2               # gunicorn workers; default: the CPUs this process may use
  preload: true            # load the model once before forking workers (false: once per worker)
  timeout: 60              # seconds a request may take before its worker is restarted
  keepalive: 5             # seconds an idle client connection is kept open by nginx
  max_body_size: 10m       # largest request body (nginx syntax: bytes, or k / m suffix)
  validate_output: true    # check every prediction against the output schema (500 if not)
  ssl:
    enabled: false
    cert: cert.pem         # relative paths resolve against this file's folder
    key: key.pem
```
Unknown keys and keys written twice are errors: a typo must not silently leave a default in
place, and a second ``workers:`` must not silently override the first.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from catwalk.cpus import usable_cpus
from catwalk.errors import ConfigError
from catwalk.spec import load_yaml

DEFAULT_PORT = 9090
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_SIZE = re.compile(r"^(\d+)([kKmM]?)$")
_ALLOWED = {
    "": {"logging", "server"},
    "logging": {"level"},
    "server": {
        "workers",
        "preload",
        "timeout",
        "keepalive",
        "max_body_size",
        "validate_output",
        "ssl",
    },
    "server.ssl": {"enabled", "cert", "key"},
}


@dataclass(frozen=True)
class SslSettings:
    enabled: bool = False
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class ServerSettings:
    """Everything the server needs besides the model itself."""

    port: int = DEFAULT_PORT
    log_level: str = "INFO"
    workers: int = field(default_factory=usable_cpus)  # the CPUs a container may use
    preload: bool = True
    timeout: int = 60
    keepalive: int = 5
    max_body_size: str = "10m"
    validate_output: bool = True
    ssl: SslSettings = SslSettings()
    config_path: Path | None = None

    @property
    def max_body_bytes(self) -> int:
        return parse_size(self.max_body_size)

    @property
    def scheme(self) -> str:
        return "https" if self.ssl.enabled else "http"


def parse_size(text: str) -> int:
    """nginx-style size (``512``, ``64k``, ``10m``) -> bytes."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(text)
    number, unit = int(match.group(1)), match.group(2).lower()
    return number * {"": 1, "k": 1024, "m": 1024 * 1024}[unit]


def load_settings(config_file: str | Path | None, port: int = DEFAULT_PORT) -> ServerSettings:
    """Read ``application.yml`` (or use the defaults when None) for a server on ``port``."""
    if not 0 < port < 65536:
        raise ConfigError(f"server port: {port} is not a TCP port (1-65535)")
    if config_file is None:
        overlay = env_settings({})
        if not overlay:
            return ServerSettings(port=port)
        settings = _parse_with_env(overlay, Path.cwd() / "(environment)", port)
        return dataclasses.replace(settings, config_path=None)
    path = Path(config_file).expanduser().resolve()
    name = str(config_file)
    try:
        data, duplicates = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{name}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: not valid YAML ({exc})") from None
    found = [f"{path}: {d}" for d in duplicates]
    try:
        settings = _parse_with_env(env_settings(data or {}), path, port)
    except ConfigError as exc:
        raise ConfigError("\n".join([*found, str(exc)])) from None
    if found:
        raise ConfigError("\n".join(found))
    return settings


def parse_settings(data: Any, path: Path, port: int = DEFAULT_PORT) -> ServerSettings:
    """Validate parsed ``application.yml`` content; report every problem at once."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping with logging and server sections")
    _check_keys(data, "", problems)
    logging_section = _mapping(data, "logging", problems)
    server = _mapping(data, "server", problems)
    ssl_section = _mapping(server, "ssl", problems, "server.")
    _check_keys(logging_section, "logging", problems)
    _check_keys(server, "server", problems)
    _check_keys(ssl_section, "server.ssl", problems)

    level = str(logging_section.get("level", "INFO")).upper()
    if level not in LOG_LEVELS:
        problems.append(f"logging.level: must be one of {', '.join(LOG_LEVELS)}")
    defaults = ServerSettings()
    workers = _int(server, "workers", defaults.workers, 1, problems)
    timeout = _int(server, "timeout", defaults.timeout, 1, problems)
    keepalive = _int(server, "keepalive", defaults.keepalive, 0, problems)
    preload = _bool(server, "preload", defaults.preload, "server.", problems)
    validate_output = _bool(
        server, "validate_output", defaults.validate_output, "server.", problems
    )
    max_body = str(server.get("max_body_size", defaults.max_body_size))
    if not _SIZE.match(max_body):
        problems.append("server.max_body_size: must be a size such as 512k or 10m")

    ssl = _ssl(ssl_section, path.parent, problems)
    if problems:
        raise ConfigError("\n".join(f"{path}: {p}" for p in problems))
    return ServerSettings(
        port=port,
        log_level=level,
        workers=workers,
        preload=preload,
        timeout=timeout,
        keepalive=keepalive,
        max_body_size=max_body,
        validate_output=validate_output,
        ssl=ssl,
        config_path=path,
    )


def _ssl(section: dict[str, Any], base: Path, problems: list[str]) -> SslSettings:
    enabled = _bool(section, "enabled", False, "server.ssl.", problems)
    if not enabled:
        return SslSettings()
    files: dict[str, Path] = {}
    for key in ("cert", "key"):
        value = section.get(key)
        if not isinstance(value, str) or not value:
            problems.append(f"server.ssl.{key}: required when ssl is enabled")
            continue
        file = (base / value).resolve()
        if not file.is_file():
            problems.append(f"server.ssl.{key}: {file} does not exist")
        elif not os.access(file, os.R_OK):
            problems.append(f"server.ssl.{key}: {file} is not readable")
        else:
            files[key] = file
    return SslSettings(enabled=True, cert=files.get("cert"), key=files.get("key"))


def _check_keys(section: dict[str, Any], where: str, problems: list[str]) -> None:
    for key in section:
        if key not in _ALLOWED[where]:
            dotted = f"{where}.{key}" if where else str(key)
            allowed = ", ".join(sorted(_ALLOWED[where]))
            problems.append(f"{dotted}: unknown key (allowed: {allowed})")


def _mapping(
    data: dict[str, Any], key: str, problems: list[str], prefix: str = ""
) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{prefix}{key}: must be a mapping")
        return {}
    return value


def _int(data: dict[str, Any], key: str, default: int, low: int, problems: list[str]) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        problems.append(f"server.{key}: must be a whole number >= {low}")
        return default
    return value


def _bool(data: dict[str, Any], key: str, default: bool, prefix: str, problems: list[str]) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        problems.append(f"{prefix}{key}: must be true or false")
        return default
    return value


# --- environment variables: the settings operators change most in containers --------------
#: Variable -> (section, key) of application.yml. Precedence: a command-line flag (none of
#: these has one) > the variable > application.yml > the default. Empty means unset.
ENV_SETTINGS = {
    "SERVER_WORKERS": ("server", "workers"),
    "SERVER_TIMEOUT": ("server", "timeout"),
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
        if key in ("workers", "timeout"):
            if not text.isdigit() or int(text) < 1:
                raise ConfigError(f"{name}: {text!r} is not a whole number >= 1")
            value = int(text)
        if merged.get(section) is None:
            merged[section] = {}
        if isinstance(merged[section], dict):
            merged[section][key] = value
    return merged


def _parse_with_env(data: Any, path: Path, port: int) -> ServerSettings:
    """parse_settings, with a problem in a value from the environment naming its variable."""
    try:
        return parse_settings(data, path, port)
    except ConfigError as exc:
        lines = str(exc).splitlines()
        for name, (section, key) in ENV_SETTINGS.items():
            if os.environ.get(name, "").strip():
                lines = [
                    f"{line} (from {name})" if f": {section}.{key}:" in line else line
                    for line in lines
                ]
        raise ConfigError("\n".join(lines)) from None
