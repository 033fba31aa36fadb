"""The zoo through catwalk's public commands, with the defaults: test-model, test-server,
production ``serve`` (a few requests, the right answers) and ``predict`` on 10,000 lines.

LightGBM under ``server.preload: true`` deadlocked every worker before issue 17 (its OpenMP
pool started in the gunicorn master); the others prove the same defaults on each library.
"""

from __future__ import annotations

import json
import math
import os
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

from catwalk.ports import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
PREDICT_LINES = 10_000


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("MODEL_PATH", "SERVER_CONFIG", "SERVER_PORT", "RUN_TESTS", "OMP_NUM_THREADS"):
        env.pop(name, None)  # each would change what is tested: the defaults
    if "/usr/sbin" not in env.get("PATH", "").split(":"):
        env["PATH"] = env.get("PATH", "") + ":/usr/sbin"
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def _catwalk(*args: str, timeout: float = 240, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "catwalk", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=timeout,
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


@pytest.mark.parametrize("kind", KINDS)
def test_test_model(kind: str, zoo_model: Callable[[str], Path]) -> None:
    result = _catwalk("test-model", "--no-install", "-m", str(zoo_model(kind)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 7 step(s) passed" in result.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_test_server_with_the_defaults(kind: str, zoo_model: Callable[[str], Path]) -> None:
    result = _catwalk("test-server", "--no-install", "-m", str(zoo_model(kind)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 18 step(s) passed" in result.stdout


@pytest.mark.parametrize("kind", KINDS)
def test_production_serve_with_the_defaults(
    kind: str, zoo_model: Callable[[str], Path], tmp_path: Path
) -> None:
    if shutil.which("nginx") is None and not os.path.exists("/usr/sbin/nginx"):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true, so not skipping: nginx missing")
        pytest.skip("nginx missing: bash scripts/install-system-deps.sh nginx")
    model = zoo_model(kind)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with open(tmp_path / "serve.log", "w+") as log:
        args = ["serve", "--no-install", "--no-run-tests", "-m", str(model)]
        server = subprocess.Popen(
            [sys.executable, "-m", "catwalk", *args, "--server-port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
        try:
            _wait_ready(url, server, log)
            rows = _test_data(model)
            for row in rows[:4]:
                # A DataFrame model takes one record too (and answers one).
                answer = requests.post(f"{url}/predict", json={"input": row["X"]}, timeout=30)
                assert answer.status_code == 200, answer.text
                assert _close(row["y"], answer.json()["output"]), (row, answer.json())
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(30)
        log.seek(0)
        text = log.read()
    assert code == 0, text
    assert "threads (" in text and "usable CPUs" in text, text  # what was chosen, and why
    assert "warmed up on" in text, text


def _wait_ready(url: str, server: subprocess.Popen[bytes], log: Any) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, f"serve exited {server.returncode}"
        try:
            if requests.get(f"{url}/ready", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError("not ready within 120 s")


@pytest.mark.parametrize("kind", KINDS)
def test_predict_ten_thousand_lines(
    kind: str, zoo_model: Callable[[str], Path], tmp_path: Path
) -> None:
    model = zoo_model(kind)
    rows = _test_data(model)
    lines = [json.dumps(rows[i % len(rows)]["X"]) for i in range(PREDICT_LINES)]
    source = tmp_path / "inputs.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    started = time.monotonic()
    result = _catwalk(
        "predict", "--no-install", "-m", str(model), "--input-file", str(source), timeout=300
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = result.stdout.splitlines()
    assert len(outputs) == PREDICT_LINES
    for i in (0, 1, len(rows) + 2, PREDICT_LINES - 1):
        assert _close(rows[i % len(rows)]["y"], json.loads(outputs[i])), i
    print(f"{kind}: predict {PREDICT_LINES} lines in {took:.1f} s")
