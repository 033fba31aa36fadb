"""Production mode: nginx's request ids in the app's log, worker timeouts, IPv6, the 413 words."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from served import MODELS, RNG, RNG_INPUT, RNG_SCORE, Server, write_config

from catwalk.server import messages
from catwalk.server.production.preflight import ipv6_available

Serve = Callable[..., Server]
SLEEPY = MODELS / "sleepy"


def wait_for_log(server: Server, text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = server.output()
        if text in output:
            return output
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the server log:\n{server.output()}")


def test_generated_correlation_id_is_nginx_request_id(serve: Serve) -> None:
    server = serve(RNG)
    # A client's X-Request-Id is replaced by nginx's own.
    reply = server.post("/predict", json={"input": RNG_INPUT}, headers={"X-Request-Id": "mine"})
    assert reply.status_code == 200 and reply.json()["output"] == {"score": RNG_SCORE}
    correlation_id = reply.json()["correlation_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", correlation_id), correlation_id
    wait_for_log(server, "POST /predict 200 ")
    assert f"correlation_id={correlation_id}" in wait_for_log(server, correlation_id)


def test_a_slow_request_gets_504_found_in_the_log_and_the_server_goes_on(
    serve: Serve, tmp_path: Path
) -> None:
    config = write_config(tmp_path, "server:\n  timeout: 2\n  workers: 1\n")
    server = serve(SLEEPY, config=config)
    started = time.monotonic()
    reply = server.post("/predict", json={"correlation_id": "order-17", "input": {"seconds": 8}})
    took = time.monotonic() - started
    assert reply.status_code == 504, reply.text
    assert reply.headers["Content-Type"] == "application/json"
    body = reply.json()
    assert "server.timeout" in body["output"]["message"]
    request_id = body["correlation_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
    assert took < 6
    # The worker's own line: which request timed out, with both ids.
    log = wait_for_log(server, f"request_id={request_id}")
    line = next(line for line in log.splitlines() if f"request_id={request_id}" in line)
    assert "worker timeout" in line and "server.timeout (2 s)" in line, line
    assert "correlation_id=order-17" in line, line
    assert "predict raised SystemExit" not in log
    # The worker was replaced; the server goes on.
    ok = server.post("/predict", json={"input": {"seconds": 0}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["output"] == {"slept": 0}
    assert server.proc.poll() is None


def test_too_large_says_the_same_words_as_the_app(serve: Serve, tmp_path: Path) -> None:
    config = write_config(tmp_path, "server:\n  max_body_size: 1k\n")
    server = serve(RNG, config=config)
    reply = server.post("/predict", data=b'{"input": "' + b"x" * 4096 + b'"}')
    assert reply.status_code == 413
    assert reply.json()["output"]["message"] == messages.too_large("1k")


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 on this machine")
def test_listens_on_ipv6_too(serve: Serve) -> None:
    server = serve(RNG)
    reply = requests.post(
        f"http://[::1]:{server.port}/predict", json={"input": RNG_INPUT}, timeout=10
    )
    assert reply.status_code == 200 and reply.json()["output"] == {"score": RNG_SCORE}


def test_ipv6_probe_matches_the_socket_module() -> None:
    if not socket.has_ipv6:
        assert ipv6_available() is False
    else:
        assert isinstance(ipv6_available(), bool)
