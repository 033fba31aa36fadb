"""What nginx and the worker answer and log by themselves, through real nginx (issue 19, 8-9).

nginx's own errors name the client's method (error_page turns ``$request_method`` into GET),
a request the worker refuses keeps the client's correlation id, every answer says
``X-Content-Type-Options: nosniff``, and ``server.trusted_proxies`` makes the per-client
connection limit count the client a trusted proxy names, not the proxy.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from served import RNG, RNG_INPUT, Server, raw, write_config

Serve = Callable[..., Server]


def send(port: int, data: bytes, source: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of the answer to ``data`` sent as it is from ``source``."""
    status, headers, body = raw(port, data, 10, source)
    return int(status.split()[1]), headers, body


def nginx_lines(server: Server, status: int) -> list[dict[str, Any]]:
    time.sleep(0.3)  # nginx's log goes through the supervisor's relay
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("status") == status]


def test_nginx_errors_name_the_clients_method_and_say_nosniff(serve: Serve, tmp_path: Path) -> None:
    server = serve(RNG, config=write_config(tmp_path, "server:\n  max_body_size: 1k\n"))
    big = b'{"input": "' + b"x" * 4096 + b'"}'
    for method in ("POST", "PUT", "PATCH"):
        reply = requests.request(method, f"{server.url}/predict", data=big, timeout=10)
        assert reply.status_code == 413
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert [line["method"] for line in nginx_lines(server, 413)] == ["POST", "PUT", "PATCH"]
    # 405 of nginx's internal error path: the message names the method the client used
    reply = requests.delete(f"{server.url}/.catwalk-error/404", timeout=10)
    assert reply.status_code == 404 and reply.headers["X-Content-Type-Options"] == "nosniff"
    assert nginx_lines(server, 404)[-1]["method"] == "DELETE"
    ok = server.post("/predict", json={"input": RNG_INPUT})
    assert ok.status_code == 200 and ok.headers["X-Content-Type-Options"] == "nosniff"


def test_a_request_the_worker_refuses_keeps_the_clients_correlation_id(serve: Serve) -> None:
    server = serve(RNG)
    for request in (
        b"FOO /predict HTTP/1.1\r\nHost: x\r\nX-Correlation-Id: mine-1\r\n"
        b"Connection: close\r\n\r\n",
        b"GET /status HTTP/1.1\r\nHost: x\r\nX-Correlation-Id: mine-1\r\n"
        b"X-Bad: a\x01b\r\nConnection: close\r\n\r\n",
    ):
        status, headers, body = send(server.port, request)
        assert status == 400, body
        assert json.loads(body)["correlation_id"] == "mine-1", body
        assert headers["x-content-type-options"] == "nosniff"
    refused = [line for line in server.output().splitlines() if "refused a request" in line]
    assert len(refused) == 2 and all("correlation_id=mine-1" in line for line in refused)
    assert all("request_id=" in line for line in refused)  # nginx's id, to find its line
    # without a header of the client's, the answer is named by nginx's request id
    status, _, body = send(server.port, b"FOO / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    named = json.loads(body)["correlation_id"]
    assert status == 400 and len(named) == 32
    assert any(f"correlation_id={named}" in line for line in server.output().splitlines())


def _hold(port: int, source: str, headers: bytes, count: int) -> list[socket.socket]:
    """``count`` connections from ``source``, each with a request head sent and no body yet."""
    held = []
    for _ in range(count):
        conn = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
        conn.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n" + headers + b"\r\n"
        )
        held.append(conn)
    time.sleep(0.3)
    return held


def _status(port: int, source: str, headers: bytes = b"") -> int:
    body = json.dumps({"input": RNG_INPUT}).encode()
    request = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n" + headers
    )
    return send(port, request + b"Connection: close\r\n\r\n" + body, source)[0]


def test_trusted_proxies_make_the_connection_limit_per_real_client(
    serve: Serve, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path,
        "server:\n  max_connections_per_client: 2\n  trusted_proxies: [127.0.0.1]\n",
    )
    server = serve(RNG, config=config)
    alice = b"X-Forwarded-For: 203.0.113.7\r\n"
    held = _hold(server.port, "127.0.0.1", alice, 2)  # the proxy, on behalf of alice
    try:
        assert _status(server.port, "127.0.0.1", alice) == 429  # alice is at her limit
        bob = b"X-Forwarded-For: 203.0.113.8\r\n"
        assert _status(server.port, "127.0.0.1", bob) == 200  # through the same proxy
        # a direct client (not a trusted proxy) cannot pose as someone else
        direct = _hold(server.port, "127.0.0.2", b"X-Forwarded-For: 203.0.113.9\r\n", 2)
        try:
            assert _status(server.port, "127.0.0.2", b"X-Forwarded-For: 198.51.100.1\r\n") == 429
        finally:
            for conn in direct:
                conn.close()
    finally:
        for conn in held:
            conn.close()
    limited = nginx_lines(server, 429)
    assert [line["client"] for line in limited] == ["203.0.113.7", "127.0.0.2"], limited


def test_without_trusted_proxies_a_forwarded_for_header_changes_nothing(
    serve: Serve, tmp_path: Path
) -> None:
    config = write_config(tmp_path, "server:\n  max_connections_per_client: 2\n")
    server = serve(RNG, config=config)
    held = _hold(server.port, "127.0.0.1", b"X-Forwarded-For: 203.0.113.7\r\n", 2)
    try:
        assert _status(server.port, "127.0.0.1", b"X-Forwarded-For: 203.0.113.8\r\n") == 429
        assert _status(server.port, "127.0.0.2") == 200  # another address has its own count
    finally:
        for conn in held:
            conn.close()
