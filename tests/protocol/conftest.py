"""Fixtures for the Open Inference Protocol tests: real catwalk servers, real protocol clients.

``v2_server(model, debug=False, config=None)`` starts ``catwalk serve`` (production: nginx +
gunicorn; ``debug``: the debug server) on a free port and stops it by its PID at the end.
tritonclient (and kserve, for its REST client) come with the ``protocol-tests`` extra; under
``CI=true`` a missing one fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from catwalk.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "example_models"


def unavailable(reason: str) -> None:
    """Skip, saying why; under ``CI=true`` fail instead, so CI never passes by skipping."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true, so not skipping: {reason}", pytrace=False)
    pytest.skip(reason)


def needs(module: str) -> Any:
    """Import ``module`` (a protocol client) or skip/fail via :func:`unavailable`."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        unavailable(f"{module} missing: pip install -e '.[protocol-tests]'")


class V2Server:
    """One ``catwalk serve`` subprocess."""

    def __init__(self, args: list[str], port: int, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.address = f"127.0.0.1:{port}"
        self.log_path = log
        self.log = open(log, "w+")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ)
        for name in ("MODEL_PATH", "SERVER_CONFIG", "SERVER_PORT", "RUN_TESTS"):
            env.pop(name, None)  # they would override the arguments
        env["PATH"] = env.get("PATH", "") + ":/usr/sbin"
        env["PYTHONPATH"] = str(ROOT / "src")
        self.proc = subprocess.Popen(
            args, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
            start_new_session=True,
        )  # fmt: skip

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 90) -> V2Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.output()}")
            try:
                if requests.get(self.url + "/ready", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready after {timeout} s:\n{self.output()}")

    def predict(self, data: Any, **kw: Any) -> Any:
        response = requests.post(self.url + "/predict", json={"input": data}, timeout=30, **kw)
        assert response.status_code == 200, response.text
        return response.json()["output"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only its tree
                self.proc.wait()
        self.log.close()


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
