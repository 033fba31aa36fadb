"""The zoo through catwalk's public commands, with the defaults: test-model, test-server,
production ``serve`` (a few requests, the right answers) and ``predict`` on 10,000 lines.

LightGBM under ``server.preload: true`` deadlocked every worker before issue 17 (its OpenMP
pool started in the gunicorn master); the others prove the same defaults on each library.

The defaults include where the model runs: each command moves into the model's own
environment (its requirements.txt + catwalk, built with uv by the kind's first command, cached
for the others; see zoo_envs.py), never catwalk's interpreter, where the zoo extra installed
the libraries only to train the models. Each test checks the command's ``environment:`` line,
and ``serve`` that its gunicorn processes run the environment's python.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from builders import KINDS
from zoo_envs import ZooEnvs, assert_cpu_only, command_line, descendants

from catwalk.ports import free_port
from requires import unavailable

pytestmark = pytest.mark.slow
PREDICT_LINES = 10_000


def _env(envs: ZooEnvs) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("MODEL_PATH", "SERVER_CONFIG", "SERVER_PORT", "RUN_TESTS", "OMP_NUM_THREADS"):
        env.pop(name, None)  # each would change what is tested: the defaults
    if "/usr/sbin" not in env.get("PATH", "").split(":"):
        env["PATH"] = env.get("PATH", "") + ":/usr/sbin"
    return envs.environ(env)


def _catwalk(
    envs: ZooEnvs, kind: str, *args: str, timeout: float = 240, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """``catwalk <args>`` as a program (it re-executes itself in the model's environment)."""
    return subprocess.run(
        [sys.executable, "-m", "catwalk", *args],
        capture_output=True,
        text=True,
        env=_env(envs),
        timeout=timeout + envs.allowance(kind),
        check=False,
        **kw,
    )


def _close(expected: Any, got: Any) -> bool:
    if isinstance(expected, float) or isinstance(got, float):
        return math.isclose(expected, got, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(expected, list):
        return len(expected) == len(got) and all(map(_close, expected, got))
    if isinstance(expected, dict):
        return expected.keys() == got.keys() and all(_close(expected[k], got[k]) for k in expected)
    return bool(expected == got)


def _test_data(model: Path) -> list[dict[str, Any]]:
    return list(json.loads((model / "test_data.json").read_text(encoding="utf-8")))


def _loaded_in(env: Path, stdout: str) -> None:
    """test-model's and test-server's step 3 name the interpreter the model was loaded in."""
    assert f"requirement(s) installed in the model's environment {env}" in stdout, stdout


@pytest.mark.parametrize("kind", KINDS)
def test_test_model(kind: str, zoo_model: Callable[[str], Path], zoo_envs: ZooEnvs) -> None:
    model = zoo_model(kind)
    result = _catwalk(zoo_envs, kind, "test-model", "-m", str(model))
    env = zoo_envs.ran_in(kind, model, result.stderr)  # first: built even when the test fails
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"test-model: all \d+ step\(s\) passed", result.stdout), result.stdout
    _loaded_in(env, result.stdout)
    assert_cpu_only(kind, env)


@pytest.mark.parametrize("kind", KINDS)
def test_test_server_with_the_defaults(
    kind: str, zoo_model: Callable[[str], Path], zoo_envs: ZooEnvs
) -> None:
    model = zoo_model(kind)
    result = _catwalk(zoo_envs, kind, "test-server", "-m", str(model))
    env = zoo_envs.ran_in(kind, model, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"test-server: all \d+ step\(s\) passed", result.stdout), result.stdout
    # Its server is started by the environment's python (sys.executable there).
    _loaded_in(env, result.stdout)


@pytest.mark.parametrize("kind", KINDS)
def test_production_serve_with_the_defaults(
    kind: str, zoo_model: Callable[[str], Path], zoo_envs: ZooEnvs, tmp_path: Path
) -> None:
    if shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"):
        unavailable("nginx missing: bash scripts/install-system-deps.sh nginx")
    model = zoo_model(kind)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    ready_within = 120 + zoo_envs.allowance(kind)
    with open(tmp_path / "serve.log", "w+") as log:
        args = ["serve", "--no-run-tests", "-m", str(model)]
        server = subprocess.Popen(
            [sys.executable, "-m", "catwalk", *args, "--server-port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(zoo_envs),
        )
        try:
            _wait_ready(url, server, ready_within)
            rows = _test_data(model)
            for row in rows[:4]:
                # A DataFrame model takes one record too (and answers one).
                answer = requests.post(f"{url}/predict", json={"input": row["X"]}, timeout=30)
                assert answer.status_code == 200, answer.text
                assert _close(row["y"], answer.json()["output"]), (row, answer.json())
            # Moved by exec: the process started is the supervisor, run by the environment's
            # python, and so is every process it started but nginx: gunicorn's master and
            # the workers that answered.
            supervisor = command_line(server.pid)
            workers = [c for c in descendants(server.pid) if not c[0].startswith("nginx")]
            # The supervisor says what it chose once it has seen nginx listen (it polls).
            deadline = time.monotonic() + 15
            while "serving http" not in Path(log.name).read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(30)
        log.seek(0)
        text = log.read()
    assert code == 0, text
    assert "threads (" in text and "usable CPUs" in text, text  # what was chosen, and why
    assert "warmed up on" in text, text
    python = str(zoo_envs.ran_in(kind, model, text) / "bin" / "python")
    assert supervisor[:3] == [python, "-m", "catwalk"], supervisor
    assert len(workers) >= 2, workers  # gunicorn's master and at least one worker
    assert {c[0] for c in workers} == {python}, workers


def _wait_ready(url: str, server: subprocess.Popen[bytes], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert server.poll() is None, f"serve exited {server.returncode}"
        try:
            if requests.get(f"{url}/ready", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not ready within {within:.0f} s")


@pytest.mark.parametrize("kind", KINDS)
def test_predict_ten_thousand_lines(
    kind: str, zoo_model: Callable[[str], Path], zoo_envs: ZooEnvs, tmp_path: Path
) -> None:
    model = zoo_model(kind)
    rows = _test_data(model)
    lines = [json.dumps(rows[i % len(rows)]["X"]) for i in range(PREDICT_LINES)]
    source = tmp_path / "inputs.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    started = time.monotonic()
    args = ("predict", "-m", str(model), "--input-file", str(source))
    result = _catwalk(zoo_envs, kind, *args, timeout=300)
    took = time.monotonic() - started
    zoo_envs.ran_in(kind, model, result.stderr)
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = result.stdout.splitlines()
    assert len(outputs) == PREDICT_LINES
    for i in (0, 1, len(rows) + 2, PREDICT_LINES - 1):
        assert _close(rows[i % len(rows)]["y"], json.loads(outputs[i])), i
    print(f"{kind}: predict {PREDICT_LINES} lines in {took:.1f} s")
