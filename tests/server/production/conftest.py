"""Fixtures for production-mode tests: real nginx, real gunicorn, free ports.

``serve(model, ...)`` starts a production server in a subprocess and returns a
:class:`served.Server`; every server still running at the end of a test is stopped by its PID.
The helpers themselves are in ``served.py``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from served import HERE, NGINX_MISSING, RNG, Server, child_env

from catwalk.checks.server_checks import free_port
from requires import unavailable

# Tests of pure functions (rendering, thread planning): no nginx to start, not slow.
UNIT = ("test_render.py", "test_threads.py")


@pytest.fixture(autouse=True)
def _needs_nginx(request: pytest.FixtureRequest) -> None:
    if NGINX_MISSING and request.node.path.name != "test_threads.py":
        unavailable("nginx missing: bash scripts/install-system-deps.sh nginx")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if HERE in path.parents and path.name not in UNIT:
            item.add_marker(pytest.mark.slow)
            item.add_marker(
                pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
            )


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``serve(model_dir, config=None, port=None, ready=True, wrap=[], env={})`` -> Server."""
    servers: list[Server] = []

    def start(
        model: Path = RNG,
        config: Path | None = None,
        port: int | None = None,
        ready: bool = True,
        wrap: tuple[str, ...] = (),
        python: str = sys.executable,
        env: dict[str, str] | None = None,
        scheme: str = "http",
    ) -> Server:
        port = port or free_port()
        args = [*wrap, python, "-m", "catwalk", "serve", "--no-install"]
        args += ["--model-path", str(model), "--server-port", str(port)]
        if config is not None:
            args += ["--server-config", str(config)]
        log = tmp_path / f"server-{port}.log"
        server = Server(args, port, scheme, env if env is not None else child_env(), log)
        servers.append(server)
        return server.wait_ready() if ready else server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1 (openssl CLI)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key
