"""End to end: real ``catwalk serve --debug`` processes, plain and with TLS."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from catwalk.checks.server_checks import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

RNG_INPUT = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}
RNG_SCORE = 0.9417154046806644
Start = Callable[..., Any]  # conftest.start_server -> ServerRun
TlsPair = Any  # conftest.TlsPair


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_debug_server_serves_the_contract(start_server: Start) -> None:
    server = start_server("rng", "--debug")
    assert requests.get(server.url + "/status", timeout=5).json() == {"status": "ok"}
    assert requests.get(server.url + "/info", timeout=5).json()["name"] == "RNGModel"
    body = requests.post(server.url + "/predict", json={"input": RNG_INPUT}, timeout=5).json()
    assert body["output"] == {"score": RNG_SCORE}
    bad = requests.post(server.url + "/predict", data=b"{", timeout=5)
    assert bad.status_code == 400
    assert bad.headers["Content-Type"] == "application/json"
    assert bad.json()["output"]["message"].startswith("body: not valid JSON")
    missing = requests.get(server.url + "/missing", timeout=5)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/json"


def test_debug_server_logs_each_request(start_server: Start) -> None:
    server = start_server("rng", "--debug")
    requests.post(
        server.url + "/predict",
        json={"correlation_id": "find-me-in-the-log", "input": RNG_INPUT},
        timeout=5,
    )
    server.stop()
    lines = [line for line in server.output().splitlines() if "find-me-in-the-log" in line]
    assert len(lines) == 1
    assert "POST /predict 200" in lines[0] and "ms correlation_id=" in lines[0]


def test_a_model_that_raises_leaves_the_server_alive(start_server: Start) -> None:
    server = start_server("raises", "--debug")
    boom = requests.post(
        server.url + "/predict",
        json={"correlation_id": "boom-1", "input": {"x": 1, "label": "boom"}},
        timeout=5,
    )
    assert boom.status_code == 500
    assert boom.json() == {
        "correlation_id": "boom-1",
        "output": {"message": "predict raised ValueError: cannot predict 'boom'"},
    }
    exits = requests.post(server.url + "/predict", json={"input": {"x": 1, "label": "exit"}})
    assert exits.status_code == 500
    fine = requests.post(server.url + "/predict", json={"input": {"x": 2, "label": "ok"}})
    assert fine.status_code == 200
    assert fine.json()["output"] == {"x": 2, "label": "ok"}
    assert server.process.poll() is None
    server.stop()
    log = server.output()
    assert "Traceback" in log and "ValueError: cannot predict 'boom'" in log


def test_sigterm_stops_the_debug_server_cleanly(start_server: Start) -> None:
    server = start_server("rng", "--debug")
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(10) == 0
    assert time.monotonic() - started < 10
    assert not listening(server.port)


def test_https_debug_server(start_server: Start, tls: TlsPair) -> None:
    server = start_server("rng", "--debug", config=tls.config, scheme="https")
    assert server.url.startswith("https://")
    status = requests.get(server.url + "/status", verify=str(tls.cert), timeout=5)
    assert status.status_code == 200
    body = requests.post(
        server.url + "/predict", json={"input": RNG_INPUT}, verify=False, timeout=5
    ).json()
    assert body["output"] == {"score": RNG_SCORE}
    # Plain HTTP on the TLS port gets no 200.
    try:
        plain = requests.get(f"http://127.0.0.1:{server.port}/status", timeout=5)
    except requests.RequestException:
        pass
    else:
        assert plain.status_code != 200


def test_server_port_overrides_the_server_port_flag(start_server: Start) -> None:
    argument_port, env_port = free_port(), free_port()
    while env_port == argument_port:
        env_port = free_port()
    server = start_server(
        "rng", "--debug", port=argument_port, wait_port=env_port, env={"SERVER_PORT": str(env_port)}
    )
    assert requests.get(server.url + "/status", timeout=5).status_code == 200
    assert not listening(argument_port)
    assert f"SERVER_PORT={env_port} overrides --server-port {argument_port}" in server.output()


def test_server_config_comes_from_the_environment(start_server: Start, tls: TlsPair) -> None:
    server = start_server("echo", "--debug", scheme="https", env={"SERVER_CONFIG": str(tls.config)})
    info = requests.get(server.url + "/info", verify=False, timeout=5).json()
    assert info["name"] == "Echo"


def test_run_tests_env_refuses_to_serve_a_failing_model(start_server: Start) -> None:
    server = start_server("wrong_predictions", "--debug", env={"RUN_TESTS": "true"}, wait=False)
    assert server.process.wait(60) == 1
    output = server.output()
    assert "[FAIL] 7. predictions" in output
    assert "Error: not serving: the test-model checks failed" in output
    assert "Traceback" not in output


def test_run_tests_then_serves_a_passing_model(start_server: Start) -> None:
    server = start_server("rng", "--debug", "--run-tests")
    assert requests.get(server.url + "/status", timeout=5).status_code == 200
    assert "test-model: all 7 step(s) passed" in server.output()


@pytest.mark.parametrize(
    ("args", "env", "code", "expected"),
    [
        ((), {"RUN_TESTS": "maybe"}, 2, "Invalid value for '--run-tests' (env var: 'RUN_TESTS')"),
        (("--server-port", "70000"), {}, 2, "70000 is not in the range 1<=x<=65535"),
        (("--server-config", "/x.yml"), {}, 1, "Error: /x.yml: cannot be read"),
    ],
)
def test_bad_options_are_clean_errors(
    start_server: Start, args: tuple[str, ...], env: dict[str, str], code: int, expected: str
) -> None:
    server = start_server("rng", "--debug", *args, env=env, wait=False)
    assert server.process.wait(30) == code
    output = server.output()
    assert expected in output
    assert "Traceback" not in output


def test_a_busy_port_is_a_clean_error(start_server: Start) -> None:
    first = start_server("rng", "--debug")
    second = start_server("rng", "--debug", port=first.port, wait=False)
    assert second.process.wait(30) == 1
    assert f"Port {first.port} is in use by another program" in second.output()
    assert requests.get(first.url + "/status", timeout=5).status_code == 200


def test_an_idle_connection_does_not_block_the_debug_server(
    start_server: Start, tmp_path: Path
) -> None:
    config = tmp_path / "application.yml"
    config.write_text("server:\n  client_timeout: 2\n")
    server = start_server("rng", "--debug", config=config)
    with socket.create_connection(("127.0.0.1", server.port)) as idle:
        idle.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")  # and never the rest
        started = time.monotonic()
        reply = requests.post(server.url + "/predict", json={"input": RNG_INPUT}, timeout=5)
        assert reply.status_code == 200 and time.monotonic() - started < 2
        idle.settimeout(5)
        assert idle.recv(100) == b""  # closed after server.client_timeout


def test_a_chunked_body_over_the_limit_is_413_in_debug_mode(
    start_server: Start, tmp_path: Path
) -> None:
    config = tmp_path / "application.yml"
    config.write_text("server:\n  max_body_size: 1k\n")
    server = start_server("rng", "--debug", config=config)

    def chunks(total: int) -> Any:
        for _ in range(total // 100):
            yield b" " * 100

    over = requests.post(server.url + "/predict", data=chunks(5000), timeout=5)
    assert over.status_code == 413, over.text
    assert over.headers["Content-Type"] == "application/json"
    assert "1k (server.max_body_size)" in over.json()["output"]["message"]
    body = b'{"input": {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}}'
    within = requests.post(server.url + "/predict", data=iter([body[:20], body[20:]]), timeout=5)
    assert within.status_code == 200 and within.json()["output"] == {"score": RNG_SCORE}
