"""Production mode (real nginx + gunicorn): bearer tokens over TLS, /ready during a graceful
stop, and /metrics scraped by a real Prometheus server across three workers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from served import RNG_INPUT, Server, write_config

from catwalk.checks.server_checks import free_port
from requires import unavailable

TOKEN = "prod-token-0123456789abcdef"
PROMETHEUS = shutil.which("prometheus")


def private_tokens(folder: Path, *tokens: str) -> Path:
    file = folder / "tokens.txt"
    file.write_text("\n".join(tokens) + "\n")
    file.chmod(0o600)
    return file


def test_bearer_tokens_over_tls(
    serve: Callable[..., Server], tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    cert, key = tls_pair
    private_tokens(tmp_path, TOKEN)
    config = write_config(
        tmp_path,
        f"server:\n  workers: 2\n  ssl:\n    enabled: true\n    cert: {cert}\n    key: {key}\n"
        "  auth:\n    tokens_file: tokens.txt\n",
    )
    server = serve(config=config, scheme="https")
    assert server.get("/status").status_code == 200
    assert server.get("/ready").status_code == 200
    denied = server.post("/predict", json={"input": RNG_INPUT})
    assert denied.status_code == 401
    assert denied.headers["WWW-Authenticate"].startswith("Bearer")
    assert denied.json()["output"]["message"].startswith("unauthorized")
    wrong = server.post(
        "/predict", json={"input": RNG_INPUT}, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401
    ok = server.post(
        "/predict", json={"input": RNG_INPUT}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert ok.status_code == 200
    assert server.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).ok
    assert TOKEN not in server.output()
    # Rotation without a restart: every worker picks the new file up within a second or so.
    private_tokens(tmp_path, "rotated-token")
    deadline = time.monotonic() + 10
    answers: set[int] = set()
    while time.monotonic() < deadline:
        answers = {
            server.get("/info", headers={"Authorization": "Bearer rotated-token"}).status_code
            for _ in range(6)
        }
        if answers == {200}:
            break
        time.sleep(0.3)
    assert answers == {200}
    assert server.get("/info", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 401


def test_a_shared_tokens_file_is_refused_at_start(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    private_tokens(tmp_path, TOKEN).chmod(0o644)
    config = write_config(tmp_path, "server:\n  auth:\n    tokens_file: tokens.txt\n")
    server = serve(config=config, ready=False)
    assert server.wait_exit(30) == 1
    assert "readable or writable by other users" in server.output()
    assert "chmod 600" in server.output()


def test_ready_turns_503_when_a_stop_begins_while_requests_are_still_served(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    config = write_config(tmp_path, "server:\n  workers: 2\n  shutdown_delay: 3\n")
    server = serve(config=config)
    assert server.get("/ready").json() == {"status": "ready"}
    started = time.monotonic()
    os.kill(server.catwalk_pid, signal.SIGTERM)
    deadline = started + 2.5
    saw_503 = False
    while time.monotonic() < deadline:
        ready = server.get("/ready")
        if ready.status_code == 503:
            saw_503 = True
            assert "stopping" in ready.json()["output"]["message"]
            # Not ready, but still serving: the load balancer has time to stop sending.
            assert server.post("/predict", json={"input": RNG_INPUT}).status_code == 200
            assert server.get("/status").status_code == 200
        time.sleep(0.1)
    assert saw_503
    assert server.wait_exit(20) == 0
    assert time.monotonic() - started >= 3  # the delay was honoured before the drain
    assert "server.shutdown_delay" in server.output()


# -- Prometheus ------------------------------------------------------------------------------


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[str, Path | None], str]]:
    """``prometheus(target, credentials_file)`` -> the URL of a real Prometheus scraping it."""
    if PROMETHEUS is None:
        unavailable("prometheus missing: bash scripts/install-system-deps.sh prometheus")
    processes: list[subprocess.Popen[bytes]] = []

    def start(target: str, credentials: Path | None) -> str:
        port = free_port()
        auth = ""
        if credentials is not None:
            auth = f"    authorization:\n      credentials_file: {credentials}\n"
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: catwalk\n"
            f"{auth}    static_configs:\n      - targets: ['{target}']\n"
        )
        log = open(tmp_path / "prometheus.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/-/ready", timeout=2).status_code == 200:
                    return url
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(
            f"prometheus did not start:\n{(tmp_path / 'prometheus.log').read_text()}"
        )

    yield start
    for process in processes:  # stopped by our own pid, never by name
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def query(prometheus_url: str, promql: str) -> float | None:
    answer = requests.get(
        prometheus_url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql}), timeout=5
    ).json()
    assert answer["status"] == "success", answer
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def scraped(prometheus_url: str, promql: str, expected: float, timeout: float = 20) -> float:
    """Wait until Prometheus's latest scrape gives ``expected`` (or time out); return it."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = query(prometheus_url, promql)
        if value == expected:
            return value
        time.sleep(0.5)
    assert value == expected, f"{promql} = {value}, expected {expected}"
    return value


def test_prometheus_scrapes_exact_counts_across_three_workers(
    serve: Callable[..., Server], prometheus: Callable[[str, Path | None], str], tmp_path: Path
) -> None:
    private_tokens(tmp_path, TOKEN)
    credentials = tmp_path / "scrape-token"
    credentials.write_text(TOKEN)
    config = write_config(tmp_path, "server:\n  workers: 3\n  auth:\n    tokens_file: tokens.txt\n")
    server = serve(config=config)
    workers = server.wait_pids("catwalk.server.worker.wsgi", 4)  # the master and three workers
    assert len(workers) == 4
    url = prometheus(f"127.0.0.1:{server.port}", credentials)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    session = requests.Session()
    first = 150
    for i in range(first):
        body = {"input": {**RNG_INPUT, "seed": i}}
        assert session.post(server.url + "/predict", json=body, headers=headers).ok
    predict_ok = 'sum(catwalk_requests_total{endpoint="/predict",status="200"})'
    assert scraped(url, predict_ok, first) == first
    # Every worker answered some of them (nginx spreads connections): the sum is over all.
    per_worker = [
        sum(
            1
            for line in server.output().splitlines()
            if f"[{pid}] catwalk.server: POST /predict 200" in line
        )
        for pid in workers
    ]
    assert sum(per_worker) == first
    # A worker killed and replaced keeps its counts in the sum.
    busiest = workers[per_worker.index(max(per_worker))]
    os.kill(busiest, signal.SIGKILL)
    second = 50
    sent = 0
    deadline = time.monotonic() + 30
    while sent < second and time.monotonic() < deadline:
        response = session.post(server.url + "/predict", json={"input": RNG_INPUT}, headers=headers)
        sent += response.status_code == 200  # the killed worker's in-flight request may 502
    assert sent == second
    assert scraped(url, predict_ok, first + second) == first + second
    assert scraped(url, 'catwalk_model_info{name="RNGModel",version="0.0.1"}', 1) == 1
    histogram = "sum(catwalk_predict_duration_seconds_count)"
    assert scraped(url, histogram, first + second) == first + second
    up = query(url, 'up{job="catwalk"}')
    assert up == 1
    text = session.get(server.url + "/metrics", headers=headers).text
    assert "catwalk_in_flight_requests 1.0" in text  # only the scrape itself, live workers only
    assert json.dumps(TOKEN) not in server.output()


def test_json_logs_are_one_object_per_line_for_the_app_gunicorn_and_nginx(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    config = write_config(
        tmp_path, "logging:\n  format: json\nserver:\n  workers: 2\n  max_body_size: 1k\n"
    )
    server = serve(config=config)
    ok = server.post("/predict", json={"input": RNG_INPUT, "correlation_id": "order-17"})
    assert ok.status_code == 200
    assert server.post("/predict", json={"input": {}}).status_code == 400
    assert server.post("/predict", data=b"x" * 4096).status_code == 413  # nginx's own answer
    assert server.get("/no\nsuch").status_code == 404  # sent as /no%0Asuch: no such route
    os.kill(server.catwalk_pid, signal.SIGTERM)
    assert server.wait_exit(20) == 0
    lines = [line for line in server.output().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    requests_logged = [r for r in records if r.get("method") == "POST" and "status" in r]
    first = next(r for r in requests_logged if r["correlation_id"] == "order-17")
    assert first["status"] == 200
    assert first["path"] == "/predict"
    assert first["level"] == "INFO"
    assert first["model_name"] == "RNGModel" and first["model_version"] == "0.0.1"
    assert isinstance(first["duration_ms"], float)
    assert first["timestamp"].endswith("Z")
    assert any(r["status"] == 400 for r in requests_logged)
    assert any(r.get("logger") == "gunicorn.error" for r in records)  # gunicorn's own lines
    assert any(r.get("logger") == "catwalk.production" for r in records)  # the supervisor's
    nginx = [r for r in records if r.get("source") == "nginx"]
    assert any("too large body" in str(r.get("message")) for r in nginx), nginx
