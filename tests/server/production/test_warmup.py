"""Warm-up: each worker predicts on its test examples before it takes traffic; test-server's
--timeout and its failures in catwalk's words (issue 17, defect 8)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable

from served import MODELS, Server, child_env


def test_the_first_request_meets_a_warm_worker(serve: Callable[..., Server]) -> None:
    server = serve(MODELS / "cold_start")
    assert server.get("/ready").status_code == 200
    started = time.monotonic()
    for x in (1, 2, 3, 4):  # both workers (2 by default here): none is cold
        answer = server.post("/predict", json={"input": {"x": x}})
        assert answer.status_code == 200, answer.text
    assert time.monotonic() - started < 2.0, "a request waited for a cold model"
    log = server.output()
    assert log.count("warmed up on 1 test example(s)") >= 1, log


def _test_server(model: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "catwalk",
            "test-server",
            "--no-install",
            "-m",
            str(MODELS / model),
            *args,
        ],
        capture_output=True,
        text=True,
        env=child_env(**env),
        timeout=180,
        check=False,
    )


def test_test_server_passes_a_cold_model_within_a_short_timeout() -> None:
    result = _test_server("cold_start", "--timeout", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"test-server: all \d+ step\(s\) passed", result.stdout), result.stdout


def test_a_timeout_is_said_in_catwalks_words() -> None:
    # CATWALK_TEST_TIMEOUT overrides --timeout (the environment wins, as for every option).
    result = _test_server("always_slow", "--timeout", "30", CATWALK_TEST_TIMEOUT="1")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "no answer within 1 s (--timeout / CATWALK_TEST_TIMEOUT)" in out, out
    assert "HTTPConnectionPool" not in out and "Read timed out" not in out, out
    assert "CATWALK_TEST_TIMEOUT=1 overrides --timeout 30" in result.stderr
