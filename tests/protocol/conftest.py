"""Fixtures for the Open Inference Protocol tests: real catwalk servers, real protocol clients.

``v2_servers(model, debug=False, config=None)`` starts ``catwalk serve`` (production: nginx +
gunicorn; ``debug``: the debug server) on a free port, once per module, and stops it by its PID
at the end. The helpers live in tests/protocol/clients.py (a module name of its own: several
test folders have a conftest).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clients import V2Server, unavailable

from catwalk.ports import free_port


@pytest.fixture(scope="module")
def v2_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., V2Server]]:
    """``v2_servers(model_dir, debug=False, config=None)``: started once per module and key."""
    started: dict[tuple[str, bool, str], V2Server] = {}
    folder = tmp_path_factory.mktemp("v2")

    def start(model: Path, *, debug: bool = False, config: Path | None = None) -> V2Server:
        key = (str(model), debug, str(config))
        if key not in started:
            if not debug and shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
                unavailable("nginx missing: bash scripts/install-system-deps.sh nginx")
            port = free_port()
            args = [sys.executable, "-m", "catwalk", "serve", "--no-install"]
            args += ["--model-path", str(model), "--server-port", str(port)]
            if config is not None:
                args += ["--server-config", str(config)]
            if debug:
                args.append("--debug")
            started[key] = V2Server(args, port, folder / f"server-{port}.log").wait_ready()
        return started[key]

    yield start
    for server in started.values():
        server.stop()
