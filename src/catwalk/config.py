"""``application.yml`` (the server configuration) -> frozen, typed :class:`ServerSettings`.

```yaml
logging:
  level: INFO              # DEBUG | INFO | WARNING | ERROR
  format: text             # text | json (one JSON object per line, nginx's logs too)
server:
  workers: 2               # gunicorn workers; default: the CPUs this process may use
  preload: true            # load the model once before forking workers (false: once per worker)
  threads_per_worker: null # threads of each worker's native pools (OpenMP, BLAS, torch)
  timeout: 60              # seconds a request may take before its worker is restarted
  keepalive: 5             # seconds an idle client connection is kept open by nginx
  max_body_size: 10m       # largest request body (nginx syntax: bytes, or k / m suffix)
  validate_output: true    # check every prediction against the output schema (500 if not)
  client_timeout: 10       # s: a client's header must arrive within it; body reads, writes: gap
  max_connections_per_client: 256  # open connections per client address (0: no limit)
  trusted_proxies: []      # addresses/CIDRs of proxies in front (their X-Forwarded-For is used)
  max_requests: 0          # requests after which a worker is replaced (0: never)
  max_requests_jitter: 0   # random extra requests per worker, so they are not replaced at once
  max_worker_memory: null  # e.g. 1g: replace a worker whose RSS passed it, after its request
  graceful_timeout: 30     # s: on SIGTERM, requests in flight get this long to finish
  shutdown_delay: 0        # seconds /ready answers 503 before the drain starts, on a stop
  metrics: true            # GET /metrics (Prometheus); false: no metrics at all
  limits:
    max_depth: 64          # deepest nesting of arrays/objects in a request body (1-200)
  ssl:
    enabled: false
    cert: cert.pem         # relative paths resolve against this file's folder
    key: key.pem
  auth:
    tokens_file: tokens.txt  # bearer tokens, one per line; not readable by others
  batching:                # overrides model.yml's batching: for this deployment
    enabled: true          # false: answer every request with its own predict call
    max_batch_size: 32
    max_latency_ms: 10
tracing:                   # OpenTelemetry (catwalk.tracing.settings; OTEL_* variables win)
  enabled: false
```
``SERVER_AUTH_TOKENS_FILE`` (relative to the working folder), when set, overrides
``server.auth.tokens_file``: containers mount their tokens as a secret file.
Unknown keys and keys written twice are errors: a typo must not silently leave a default in
place, and a second ``workers:`` must not silently override the first.

The environment-variable layer lives in :mod:`catwalk.config_env`, the allowed keys and
one-field readers in :mod:`catwalk.config_fields`, tokens-file reading in
:mod:`catwalk.tokens_file`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from catwalk.config_env import ENV_SETTINGS, TOKENS_ENV, env_settings
from catwalk.config_fields import check_keys, read_bool, read_int, read_mapping
from catwalk.config_models import ModelsSettings, parse_models
from catwalk.cpus import usable_cpus
from catwalk.errors import ConfigError
from catwalk.spec import Batching, batch_size_problem, latency_problem, load_yaml
from catwalk.tokens_file import read_tokens, tokens_file_problem
from catwalk.tracing.settings import TracingSettings, read_tracing

DEFAULT_PORT = 9090
# Request body limits (docs/serving.md). orjson writes at most 255 levels (the echoed
# extra_data) and parses at most 1,024: the depth limit stays well below both.
DEFAULT_MAX_DEPTH = 64
MAX_MAX_DEPTH = 200
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
_SIZE = re.compile(r"^(\d+)([kKmM]?)$")
_MEMORY = re.compile(r"^(\d+)([kKmMgG]?)$")  # sizes of memory may be in GiB too
# Whole-number connection/worker keys checked alike: (key, lowest allowed value).
_LIMITS = (
    ("client_timeout", 1),
    ("max_connections_per_client", 0),
    ("max_requests", 0),
    ("max_requests_jitter", 0),
    ("graceful_timeout", 1),
)


@dataclass(frozen=True)
class SslSettings:
    enabled: bool = False
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class AuthSettings:
    """Bearer-token auth: on when a tokens file is given (see :mod:`catwalk.server.ops.auth`)."""

    tokens_file: Path | None = None

    @property
    def enabled(self) -> bool:
        return self.tokens_file is not None


@dataclass(frozen=True)
class BatchingSettings:
    """``server.batching``: this deployment's say over a model's ``batching:``."""

    enabled: bool = True
    max_batch_size: int | None = None
    max_latency_ms: float | None = None

    def apply(self, declared: Batching | None) -> Batching | None:
        """The batching in force for a model declaring ``declared`` (None: unbatched).

        Only a model that declares ``batching:`` is batched (it has to be written for it); the
        overrides change its numbers, ``enabled: false`` turns it off.
        """
        if declared is None or not self.enabled:
            return None
        return Batching(
            self.max_batch_size if self.max_batch_size is not None else declared.max_batch_size,
            self.max_latency_ms if self.max_latency_ms is not None else declared.max_latency_ms,
        )


@dataclass(frozen=True)
class ServerSettings:
    """Everything the server needs besides the model itself."""

    port: int = DEFAULT_PORT
    log_level: str = "INFO"
    log_format: str = "text"
    workers: int = field(default_factory=usable_cpus)  # the CPUs a container may use
    preload: bool = True
    threads_per_worker: int | None = None  # None: the model's runtime:, else CPUs / workers
    timeout: int = 60
    keepalive: int = 5
    max_body_size: str = "10m"
    validate_output: bool = True
    client_timeout: int = 10
    max_connections_per_client: int = 256
    # Proxies (addresses or CIDRs) whose X-Forwarded-For names the client (nginx real_ip).
    trusted_proxies: tuple[str, ...] = ()
    max_requests: int = 0
    max_requests_jitter: int = 0
    max_worker_memory: str | None = None
    graceful_timeout: int = 30
    shutdown_delay: float = 0.0
    metrics: bool = True
    ssl: SslSettings = SslSettings()
    max_depth: int = DEFAULT_MAX_DEPTH
    auth: AuthSettings = AuthSettings()
    batching: BatchingSettings = BatchingSettings()
    # tracing: and the OTEL_* variables (catwalk.tracing.settings)
    tracing: TracingSettings = field(default_factory=TracingSettings)
    models: ModelsSettings = field(
        default_factory=ModelsSettings
    )  # a repository's routing (catwalk.config_models)
    config_path: Path | None = None

    @property
    def max_body_bytes(self) -> int:
        return parse_size(self.max_body_size)

    @property
    def max_worker_memory_bytes(self) -> int | None:
        return None if self.max_worker_memory is None else parse_size(self.max_worker_memory)

    @property
    def scheme(self) -> str:
        return "https" if self.ssl.enabled else "http"


def parse_size(text: str) -> int:
    """nginx-style size (``512``, ``64k``, ``10m``, ``2g``) -> bytes."""
    match = _MEMORY.match(text)
    if not match:
        raise ValueError(text)
    number, unit = int(match.group(1)), match.group(2).lower()
    return number * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]


def load_settings(config_file: str | Path | None, port: int = DEFAULT_PORT) -> ServerSettings:
    """Read ``application.yml`` (or use the defaults when None) for a server on ``port``."""
    if not 0 < port < 65536:
        raise ConfigError(f"server port: {port} is not a TCP port (1-65535)")
    if config_file is None:
        overlay = env_settings({})
        if overlay:
            settings = _parse_with_env(overlay, Path.cwd() / "(environment)", port)
            return dataclasses.replace(settings, config_path=None)
        problems: list[str] = []
        auth = _auth({}, Path.cwd(), problems)
        tracing = read_tracing({}, problems)  # the OTEL_* variables alone may turn it on
        if problems:
            raise ConfigError("\n".join(problems))
        return ServerSettings(port=port, auth=auth, tracing=tracing)
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
    check_keys(data, "", problems)
    logging_section = read_mapping(data, "logging", problems)
    server = read_mapping(data, "server", problems)
    ssl_section = read_mapping(server, "ssl", problems, "server.")
    auth_section = read_mapping(server, "auth", problems, "server.")
    batching_section = read_mapping(server, "batching", problems, "server.")
    check_keys(logging_section, "logging", problems)
    check_keys(server, "server", problems)
    check_keys(ssl_section, "server.ssl", problems)
    check_keys(auth_section, "server.auth", problems)
    check_keys(batching_section, "server.batching", problems)
    models = parse_models(read_mapping(data, "models", problems), problems)

    level = str(logging_section.get("level", "INFO")).upper()
    if level not in LOG_LEVELS:
        problems.append(f"logging.level: must be one of {', '.join(LOG_LEVELS)}")
    log_format = logging_section.get("format", "text")
    if log_format not in LOG_FORMATS:
        problems.append(f"logging.format: must be one of {', '.join(LOG_FORMATS)}")
        log_format = "text"
    defaults = ServerSettings()
    workers = read_int(server, "workers", defaults.workers, 1, problems)
    timeout = read_int(server, "timeout", defaults.timeout, 1, problems)
    keepalive = read_int(server, "keepalive", defaults.keepalive, 0, problems)
    preload = read_bool(server, "preload", defaults.preload, "server.", problems)
    threads = server.get("threads_per_worker")
    if threads is not None:
        threads = read_int(server, "threads_per_worker", 1, 1, problems)
    validate_output = read_bool(
        server, "validate_output", defaults.validate_output, "server.", problems
    )
    max_body = str(server.get("max_body_size", defaults.max_body_size))
    if not _SIZE.match(max_body):
        problems.append("server.max_body_size: must be a size such as 512k or 10m")
    whole = {
        key: read_int(server, key, getattr(defaults, key), low, problems) for key, low in _LIMITS
    }
    memory = server.get("max_worker_memory")
    if memory is not None and not (_MEMORY.match(str(memory)) and parse_size(str(memory)) > 0):
        problems.append("server.max_worker_memory: must be a size such as 512m or 2g")

    metrics = read_bool(server, "metrics", defaults.metrics, "server.", problems)
    shutdown_delay = server.get("shutdown_delay", 0)
    if isinstance(shutdown_delay, bool) or not isinstance(shutdown_delay, (int, float)):
        problems.append("server.shutdown_delay: must be a number of seconds >= 0")
        shutdown_delay = 0
    elif not 0 <= shutdown_delay <= 3600:
        problems.append("server.shutdown_delay: must be between 0 and 3600 seconds")
        shutdown_delay = 0

    trusted_proxies = _trusted_proxies(server.get("trusted_proxies", []), problems)
    ssl = _ssl(ssl_section, path.parent, problems)
    auth = _auth(auth_section, path.parent, problems)
    batching = _batching(batching_section, problems)
    tracing = read_tracing(read_mapping(data, "tracing", problems), problems)
    # Request body limits (docs/serving.md): checked before a body is parsed.
    limits = read_mapping(server, "limits", problems, "server.")
    check_keys(limits, "server.limits", problems)
    max_depth = limits.get("max_depth", DEFAULT_MAX_DEPTH)
    if isinstance(max_depth, bool) or not isinstance(max_depth, int):
        max_depth = None
    if max_depth is None or not 1 <= max_depth <= MAX_MAX_DEPTH:
        problems.append(
            f"server.limits.max_depth: must be a whole number from 1 to {MAX_MAX_DEPTH}"
        )
        max_depth = DEFAULT_MAX_DEPTH
    if problems:
        raise ConfigError("\n".join(f"{path}: {p}" for p in problems))
    return ServerSettings(
        port=port,
        log_level=level,
        log_format=log_format,
        workers=workers,
        preload=preload,
        threads_per_worker=threads,
        timeout=timeout,
        keepalive=keepalive,
        max_body_size=max_body,
        validate_output=validate_output,
        max_worker_memory=None if memory is None else str(memory),
        shutdown_delay=float(shutdown_delay),
        metrics=metrics,
        ssl=ssl,
        max_depth=max_depth,
        auth=auth,
        batching=batching,
        tracing=tracing,
        models=models,
        trusted_proxies=trusted_proxies,
        config_path=path,
        **whole,
    )


def _trusted_proxies(value: Any, problems: list[str]) -> tuple[str, ...]:
    """``server.trusted_proxies``: a list (or a comma-separated string) of IP addresses and
    CIDR networks, each written back in its canonical form (``10.0.0.0/8``, ``::1``)."""
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    if not isinstance(value, list):
        problems.append("server.trusted_proxies: must be a list of IP addresses or networks")
        return ()
    found: list[str] = []
    for item in value:
        try:
            network = ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            problems.append(
                f"server.trusted_proxies: {item!r} is not an IP address or network "
                "(e.g. 10.0.0.0/8, 192.168.1.10, fd00::/8)"
            )
            continue
        found.append(str(network.network_address) if network.num_addresses == 1 else str(network))
    return tuple(found)


def _batching(section: dict[str, Any], problems: list[str]) -> BatchingSettings:
    enabled = read_bool(section, "enabled", True, "server.batching.", problems)
    size = section.get("max_batch_size")
    latency = section.get("max_latency_ms")
    for key, value, check in (
        ("max_batch_size", size, batch_size_problem),
        ("max_latency_ms", latency, latency_problem),
    ):
        problem = None if value is None else check(value)
        if problem:
            problems.append(f"server.batching.{key}: {problem}")
    return BatchingSettings(
        enabled=enabled,
        max_batch_size=size if isinstance(size, int) and not batch_size_problem(size) else None,
        max_latency_ms=(
            float(latency) if latency is not None and not latency_problem(latency) else None
        ),
    )


def _ssl(section: dict[str, Any], base: Path, problems: list[str]) -> SslSettings:
    enabled = read_bool(section, "enabled", False, "server.ssl.", problems)
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


def _auth(section: dict[str, Any], base: Path, problems: list[str]) -> AuthSettings:
    """``server.auth``, with ``SERVER_AUTH_TOKENS_FILE`` over ``tokens_file``; file checked."""
    from_env = os.environ.get(TOKENS_ENV, "").strip()
    value: Any = from_env or section.get("tokens_file")
    if value is None:
        return AuthSettings()
    where = TOKENS_ENV if from_env else "server.auth.tokens_file"
    if not isinstance(value, str) or not value:
        problems.append(f"{where}: must be the path of a tokens file")
        return AuthSettings()
    file = (Path.cwd() if from_env else base) / Path(value).expanduser()
    file = file.resolve()
    problem = tokens_file_problem(file)
    if problem is None:
        try:
            if not read_tokens(file):
                problem = f"{file}: holds no token (one per line; # starts a comment)"
        except (OSError, ValueError) as exc:
            problem = str(exc)
    if problem:
        problems.append(f"{where}: {problem}")
        return AuthSettings()
    return AuthSettings(tokens_file=file)


def _parse_with_env(data: Any, path: Path, port: int) -> ServerSettings:
    """parse_settings, with a problem in a value from the environment naming its variable."""
    try:
        return parse_settings(data, path, port)
    except ConfigError as exc:
        lines = str(exc).splitlines()
        if path.name == "(environment)":  # no file: the values came from variables only
            lines = [line.replace(f"{path}: ", "environment: ", 1) for line in lines]
        for name, (section, key) in ENV_SETTINGS.items():
            if os.environ.get(name, "").strip():
                lines = [
                    f"{line} (from {name})" if f": {section}.{key}:" in line else line
                    for line in lines
                ]
        raise ConfigError("\n".join(lines)) from None
