"""application.yml -> ServerSettings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from catwalk.config import DEFAULT_PORT, ServerSettings, load_settings, parse_size
from catwalk.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "application.yml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    settings = load_settings(None)
    assert settings == ServerSettings()
    assert settings.port == DEFAULT_PORT == 9090
    assert settings.log_level == "INFO"
    assert settings.workers == (os.cpu_count() or 1)
    assert settings.preload is True
    assert settings.validate_output is True
    assert settings.max_body_bytes == 10 * 1024 * 1024
    assert settings.scheme == "http"
    assert settings.config_path is None


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    settings = load_settings(path, port=8000)
    assert settings.port == 8000
    assert settings.workers == ServerSettings().workers
    assert settings.config_path == path


def test_full_file(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "cert.pem").write_text("cert")
    (tmp_path / "certs" / "key.pem").write_text("key")
    path = write(
        tmp_path,
        """
logging:
  level: debug
server:
  workers: 3
  preload: false
  timeout: 30
  keepalive: 0
  max_body_size: 64k
  validate_output: false
  ssl:
    enabled: true
    cert: certs/cert.pem
    key: certs/key.pem
""",
    )
    settings = load_settings(path)
    assert settings.log_level == "DEBUG"
    assert (settings.workers, settings.preload, settings.timeout) == (3, False, 30)
    assert settings.keepalive == 0
    assert settings.max_body_bytes == 64 * 1024
    assert settings.validate_output is False
    assert settings.scheme == "https"
    # Relative paths resolve against the file's folder, not the working directory.
    assert settings.ssl.cert == tmp_path / "certs" / "cert.pem"
    assert settings.ssl.key == tmp_path / "certs" / "key.pem"


def test_relative_paths_do_not_depend_on_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "cert.pem").write_text("cert")
    (conf / "key.pem").write_text("key")
    write(conf, "server:\n  ssl: {enabled: true, cert: cert.pem, key: key.pem}\n")
    monkeypatch.chdir(tmp_path)
    settings = load_settings("conf/application.yml")
    assert settings.ssl.cert == conf / "cert.pem"


def test_unknown_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  worker: 2\n  ssl: {enable: true}\nlog: {}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(
        f"{path}: log: unknown key (allowed: logging, models, server, tracing)"
    )
    assert any(line.startswith(f"{path}: server.worker: unknown key") for line in lines)
    assert any(line.startswith(f"{path}: server.ssl.enable: unknown key") for line in lines)


def test_missing_cert(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text("key")
    path = write(tmp_path, "server:\n  ssl: {enabled: true, cert: nope.pem, key: key.pem}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value) == f"{path}: server.ssl.cert: {tmp_path / 'nope.pem'} does not exist"


def test_ssl_needs_cert_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  ssl: {enabled: true}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).splitlines() == [
        f"{path}: server.ssl.cert: required when ssl is enabled",
        f"{path}: server.ssl.key: required when ssl is enabled",
    ]


def test_ssl_disabled_ignores_files(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  ssl: {enabled: false, cert: nope.pem}\n")
    assert load_settings(path).ssl.cert is None


def test_bad_level(tmp_path: Path) -> None:
    path = write(tmp_path, "logging:\n  level: LOUD\n")
    with pytest.raises(ConfigError, match=r"logging\.level: must be one of DEBUG, INFO"):
        load_settings(path)


@pytest.mark.parametrize("size", ["10 m", "1g", "-5", "big", "1.5m"])
def test_bad_sizes(tmp_path: Path, size: str) -> None:
    path = write(tmp_path, f"server:\n  max_body_size: '{size}'\n")
    with pytest.raises(ConfigError, match=r"server\.max_body_size: must be a size"):
        load_settings(path)


@pytest.mark.parametrize(("text", "size"), [("512", 512), ("2k", 2048), ("1M", 1048576)])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_size_as_a_number(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "server:\n  max_body_size: 1024\n")).max_body_bytes == 1024


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server:\n  workers: 0\n", "server.workers: must be a whole number >= 1"),
        ("server:\n  workers: true\n", "server.workers: must be a whole number >= 1"),
        ("server:\n  timeout: '60'\n", "server.timeout: must be a whole number >= 1"),
        ("server:\n  keepalive: -1\n", "server.keepalive: must be a whole number >= 0"),
        ("server:\n  preload: 'yes'\n", "server.preload: must be true or false"),
        ("server: [1]\n", "server: must be a mapping"),
    ],
)
def test_bad_values(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value) == f"{path}: {message}"


def test_all_problems_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "logging: {level: LOUD}\nserver: {workers: 0, preload: 1}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert len(str(info.value).splitlines()) == 3


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings(tmp_path / "absent.yml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(write(tmp_path, "server: {workers: 2\n"))
    with pytest.raises(ConfigError, match="must be a mapping with logging and server"):
        load_settings(write(tmp_path, "- a\n- b\n"))


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_bad_port(port: int) -> None:
    with pytest.raises(ConfigError, match=f"server port: {port} is not a TCP port"):
        load_settings(None, port=port)


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  workers: 2\n  timeout: 5\n  workers: 4\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value) == (
        f"{path}: server.workers: duplicate key at line 4 (first set at line 2); keep one"
    )


def test_duplicate_keys_come_with_the_other_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "logging: {level: LOUD}\nlogging: {level: INFO}\nserver: {workers: 0}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).splitlines() == [
        f"{path}: logging: duplicate key at line 2 (first set at line 1); keep one",
        f"{path}: server.workers: must be a whole number >= 1",
    ]


def test_connection_and_worker_limits(tmp_path: Path) -> None:
    defaults = load_settings(None)
    assert defaults.client_timeout == 10 and defaults.max_connections_per_client == 256
    assert defaults.max_requests == 0 and defaults.max_worker_memory_bytes is None
    assert defaults.graceful_timeout >= 30  # Kubernetes' default grace period
    path = write(
        tmp_path,
        "server:\n  client_timeout: 3\n  max_connections_per_client: 0\n  max_requests: 500\n"
        "  max_requests_jitter: 50\n  max_worker_memory: 2g\n  graceful_timeout: 45\n",
    )
    settings = load_settings(path)
    assert (settings.client_timeout, settings.max_connections_per_client) == (3, 0)
    assert (settings.max_requests, settings.max_requests_jitter) == (500, 50)
    assert settings.max_worker_memory_bytes == 2 * 1024**3 and settings.graceful_timeout == 45


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("client_timeout: 0", "server.client_timeout: must be a whole number >= 1"),
        ("max_connections_per_client: -1", "server.max_connections_per_client: must be"),
        ("max_requests: many", "server.max_requests: must be a whole number >= 0"),
        ("graceful_timeout: 0", "server.graceful_timeout: must be a whole number >= 1"),
        ("max_worker_memory: lots", "server.max_worker_memory: must be a size such as 512m"),
        ("max_worker_memory: 0", "server.max_worker_memory: must be a size"),
    ],
)
def test_bad_limits(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, f"server:\n  {line}\n"))


def test_request_body_limits(tmp_path: Path) -> None:
    assert load_settings(None).max_depth == 64
    path = write(tmp_path, "server:\n  limits:\n    max_depth: 10\n")
    assert load_settings(path).max_depth == 10


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("limits:\n    max_depth: 0", r"server\.limits\.max_depth: must be a whole number from 1"),
        ("limits:\n    max_depth: 201", r"server\.limits\.max_depth: must be a whole number"),
        ("limits:\n    max_depth: deep", r"server\.limits\.max_depth: must be a whole number"),
        ("limits:\n    max_depth: true", r"server\.limits\.max_depth: must be a whole number"),
        ("limits:\n    max_dept: 3", r"server\.limits\.max_dept: unknown key \(allowed: max_depth"),
        ("limits: 3", r"server\.limits: must be a mapping"),
    ],
)
def test_bad_request_body_limits(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, f"server:\n  {text}\n"))


def test_batching_overrides(tmp_path: Path) -> None:
    from catwalk.config import BatchingSettings
    from catwalk.spec import Batching

    settings = load_settings(
        write(tmp_path, "server:\n  batching:\n    max_batch_size: 4\n    max_latency_ms: 1.5\n")
    )
    assert settings.batching == BatchingSettings(True, 4, 1.5)
    declared = Batching(32, 10.0)
    assert settings.batching.apply(declared) == Batching(4, 1.5)
    assert settings.batching.apply(None) is None  # a model without batching: stays unbatched
    off = load_settings(write(tmp_path, "server:\n  batching:\n    enabled: false\n"))
    assert off.batching.apply(declared) is None
    assert ServerSettings().batching.apply(declared) == declared


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("    max_batch_size: 0\n", "server.batching.max_batch_size: must be between 1 and"),
        ("    max_batch_size: x\n", "server.batching.max_batch_size: must be a whole number"),
        ("    max_latency_ms: 0\n", "server.batching.max_latency_ms: must be > 0"),
        ("    enabled: maybe\n", "server.batching.enabled: must be true or false"),
        ("    size: 3\n", "server.batching.size: unknown key (allowed: enabled, max_batch_size"),
    ],
)
def test_bad_batching_overrides(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "server:\n  batching:\n" + text))
    assert expected in str(info.value)


# -- environment variables for the settings operators change most in containers ------------


def test_env_variables_win_over_application_yml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "application.yml"
    config.write_text("logging: {level: INFO}\nserver: {workers: 4, timeout: 60}\n")
    monkeypatch.setenv("SERVER_WORKERS", "1")
    monkeypatch.setenv("SERVER_TIMEOUT", "5")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = load_settings(config)
    assert (settings.workers, settings.timeout, settings.log_level) == (1, 5, "DEBUG")
    assert settings.config_path == config.resolve()


def test_env_variables_without_a_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVER_WORKERS", "3")
    settings = load_settings(None, 8080)
    assert (settings.workers, settings.port, settings.config_path) == (3, 8080, None)


def test_empty_env_variables_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "application.yml"
    config.write_text("server:\n  workers: 4\n")
    for name in ("SERVER_WORKERS", "SERVER_TIMEOUT", "LOG_LEVEL", "LOG_FORMAT"):
        monkeypatch.setenv(name, "")
    assert load_settings(config).workers == 4


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SERVER_WORKERS", "two", "SERVER_WORKERS: 'two' is not a whole number >= 1"),
        ("SERVER_TIMEOUT", "0", "SERVER_TIMEOUT: '0' is not a whole number >= 1"),
        ("LOG_LEVEL", "LOUD", "logging.level: must be one of DEBUG, INFO, WARNING, ERROR"),
    ],
)
def test_bad_env_variables_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert message in str(info.value)
    assert name in str(info.value)


def test_log_format_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert load_settings(None).log_format == "json"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert str(info.value) == (
        "environment: logging.format: must be one of text, json (from LOG_FORMAT)"
    )
