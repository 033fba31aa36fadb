"""Fixtures for the server tests: loaded models by name, Flask test clients, real debug servers.

Models are looked up by name in tests/server/models, then example_models, then tests/models.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from catwalk.checks.server_checks import free_port
from catwalk.checks.server_reach import wait_ready
from catwalk.config import ServerSettings
from catwalk.model import LoadedModel, load_model
from catwalk.server.app import create_app
from catwalk.spec import load_spec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SEARCH = (HERE / "models", ROOT / "example_models", ROOT / "tests" / "models")
OVERRIDE_VARS = ("MODEL_PATH", "SERVER_CONFIG", "SERVER_PORT", "RUN_TESTS")


def find_model(name: str) -> Path:
    for folder in SEARCH:
        if (folder / name / "model.yml").is_file():
            return folder / name
    raise AssertionError(f"no model named {name!r} in {', '.join(map(str, SEARCH))}")


@pytest.fixture
def model_path() -> Callable[[str], Path]:
    """``model_path("rng")`` -> the folder of a model found by name."""
    return find_model


@pytest.fixture
def load() -> Callable[[str], LoadedModel]:
    """``load("rng")`` -> a freshly loaded model."""

    def _load(name: str) -> LoadedModel:
        return load_model(load_spec(find_model(name)))

    return _load


@pytest.fixture
def make_client(load: Callable[[str], LoadedModel]) -> Callable[..., FlaskClient]:
    """``make_client("rng", validate_output=False)`` -> a test client of create_app."""

    def _client(name: str, **settings: Any) -> FlaskClient:
        app = create_app(load(name), ServerSettings(**settings))
        app.testing = True
        return app.test_client()

    return _client


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No serve override variable leaks in from the environment running the tests."""
    for name in OVERRIDE_VARS:
        monkeypatch.delenv(name, raising=False)


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OVERRIDE_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@pytest.fixture
def child_environ() -> dict[str, str]:
    """The environment of a catwalk process a test starts (no override variable set)."""
    return child_env()


@dataclass
class ServerRun:
    """One ``catwalk serve`` process started by a test."""

    process: subprocess.Popen[bytes]
    port: int
    url: str
    log: Any = field(repr=False)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        text: str = self.log.read().decode("utf-8", "replace")
        return text

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@dataclass(frozen=True)
class TlsPair:
    cert: Path
    key: Path
    config: Path  # an application.yml enabling SSL with this pair (relative paths)


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsPair:
    """A self-signed certificate for localhost, made with the openssl CLI."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    config = folder / "application.yml"
    config.write_text("server:\n  ssl:\n    enabled: true\n    cert: cert.pem\n    key: key.pem\n")
    return TlsPair(cert=cert, key=key, config=config)


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerRun]]:
    """``start_server("rng", "--debug", config=..., env=...)`` -> a ready server, stopped after."""
    runs: list[ServerRun] = []

    def _start(
        name: str,
        *args: str,
        config: Path | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
        wait_port: int | None = None,
        scheme: str = "http",
        wait: bool = True,
    ) -> ServerRun:
        port = port or free_port()
        command = [sys.executable, "-m", "catwalk", "serve", "-m", str(find_model(name))]
        command += ["--server-port", str(port), "--no-install", *args]
        if config is not None:
            command += ["--server-config", str(config)]
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed at teardown
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(**(env or {})),
        )
        listen = wait_port or port
        run = ServerRun(process, listen, f"{scheme}://127.0.0.1:{listen}", log)
        runs.append(run)
        if wait:
            alive = lambda: process.poll() is None  # noqa: E731
            try:
                wait_ready(run.url, timeout=60, verify=False, alive=alive)
            except Exception as exc:
                raise AssertionError(f"{exc}\n--- server output ---\n{run.output()}") from None
        return run

    yield _start
    for run in runs:
        run.stop()
        run.log.close()
