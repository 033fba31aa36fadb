"""A repository on the real production server (nginx, gunicorn, two workers): routing, metrics
per model across workers, the canary split, a slow shadow, a model that cannot load, and the
test-server command."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from repo_fixtures import SHOP

from catwalk.checks.server_process import ServerProcess
from catwalk.checks.server_reach import wait_ready
from catwalk.errors import CatwalkError
from catwalk.ports import free_port

pytestmark = pytest.mark.slow

Serve = Callable[..., tuple[str, ServerProcess]]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """``serve(path, config_text)`` -> (base URL, the running ``catwalk serve``)."""
    started: list[ServerProcess] = []

    def start(path: Path, config: str = "server: {workers: 2}\n") -> tuple[str, ServerProcess]:
        config_file = tmp_path / f"application-{len(started)}.yml"
        config_file.write_text(config)
        port = free_port()
        server = ServerProcess(path, port=port, server_config=config_file)
        started.append(server)
        server.start()
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, timeout=120, alive=server.alive)
        except CatwalkError as exc:
            raise AssertionError(f"{exc}\n{server.log_tail(80)}") from None
        return url, server

    yield start
    for server in started:
        server.stop()
        server.close()


def post(url: str, body: dict[str, object], path: str = "/predict") -> requests.Response:
    return requests.post(url + path, json=body, timeout=10)


def test_routing_and_metrics_per_model_across_workers(serve: Serve) -> None:
    url, server = serve(SHOP, "server: {workers: 2}\nmodels: {default: price}\n")
    refs = [("scale", "1.9"), ("scale", "1.10"), ("price", "0.1")]

    def send(i: int) -> str:
        name, version = refs[i % 3]
        answer = requests.post(
            f"{url}/models/{name}/versions/{version}/predict", json={"input": {"x": i}}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        return answer.headers["X-Catwalk-Model"]

    with ThreadPoolExecutor(6) as pool:  # at once: both workers answer
        sent = Counter(pool.map(send, range(90)))
    assert sent == {"scale@1.9": 30, "scale@1.10": 30, "price@0.1": 30}
    assert post(url, {"input": {"x": 1}}).json()["output"] == {"y": 10}  # the default: price
    sent["price@0.1"] += 1
    missing = post(url, {"model": {"name": "scale", "version": "9"}, "input": {"x": 1}})
    assert missing.status_code == 404
    assert missing.json()["output"]["message"] == (
        "model 'scale' version '9' not found: this server serves price 0.1; scale 1.9, 1.10"
    )
    assert requests.get(url + "/ready", timeout=10).status_code == 200
    assert [m["version"] for m in requests.get(url + "/models", timeout=10).json()["models"]] == [
        "0.1", "1.9", "1.10",
    ]  # fmt: skip
    metrics = requests.get(url + "/metrics", timeout=10).text
    for ref, count in sent.items():
        name, version = ref.split("@")
        line = f'catwalk_model_requests_total{{name="{name}",status="200",version="{version}"}}'
        assert f"{line} {float(count)}" in metrics, ref
    log = server.log_tail(400)
    workers = set(re.findall(r"\[(\d+)\] catwalk\.server: POST /models/\S+ 200 .* model=", log))
    assert len(workers) == 2, log  # both workers answered; /metrics summed them


def test_the_canary_split_is_within_5_percent_and_sticky(serve: Serve) -> None:
    config = "server: {workers: 2}\nmodels:\n  traffic: {scale: {'1.9': 90, '1.10': 10}}\n"
    url, _ = serve(SHOP, config)
    picked: dict[str, str] = {}
    with requests.Session() as session:
        for i in range(2000):
            cid = f"user-{i}"
            answer = session.post(
                url + "/models/scale/predict",
                json={"correlation_id": cid, "input": {"x": 1}},
                timeout=10,
            )
            picked[cid] = answer.headers["X-Catwalk-Model"]
        share = sum(ref == "scale@1.10" for ref in picked.values()) / len(picked)
        assert 0.05 <= share <= 0.15, share
        for i in range(0, 2000, 10):  # the same id, the same version, whichever worker
            cid = f"user-{i}"
            answer = session.post(
                url + "/predict",
                json={"correlation_id": cid, "model": {"name": "scale"}, "input": {"x": 1}},
                headers={"Connection": "close"},
                timeout=10,
            )
            assert answer.headers["X-Catwalk-Model"] == picked[cid]


def test_a_slow_shadow_neither_delays_nor_changes_answers(
    serve: Serve, make_repo: Callable[..., Path]
) -> None:
    root = make_repo(
        ("v1", "m", "1.0", {"factor": 1}),
        ("v2", "m", "2.0", {"factor": 3, "sleep": 2}),
    )
    config = "server: {workers: 2}\nmodels:\n  versions: {m: '1.0'}\n  shadow: {m: '2.0'}\n"
    url, server = serve(root, config)
    took = []
    with requests.Session() as session:
        for i in range(10):
            started = time.monotonic()
            answer = session.post(url + "/predict", json={"input": {"x": i}}, timeout=10)
            took.append(time.monotonic() - started)
            assert answer.json()["output"] == {"y": i}  # the primary's answer, never 3x
            assert answer.headers["X-Catwalk-Model"] == "m@1.0"
    assert max(took) < 0.5, took  # each shadow run sleeps 2 s, in the background
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        metrics = requests.get(url + "/metrics", timeout=10).text
        found = re.search(
            r'catwalk_shadow_total\{name="m",outcome="different",version="2.0"\} (\d+)', metrics
        )
        if found and int(found.group(1)) >= 2:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"no shadow comparison counted:\n{server.log_tail(40)}")
    assert "shadow m@2.0 beside m@1.0: different (y: expected" in server.log_tail(400)


def test_a_model_that_cannot_load_stops_the_start(make_repo: Callable[..., Path]) -> None:
    root = make_repo(("good", "a", "1", {}), ("bad", "b", "2", {"fail_load": True}))
    server = ServerProcess(root, port=free_port())
    server.start()
    try:
        assert server.process is not None
        code = server.process.wait(120)
        log = server.log_tail(60)
    finally:
        server.stop()
        server.close()
    assert code != 0
    assert f"model b 2 ({root / 'bad'}) cannot be loaded, so the server does not start" in log


def test_test_server_checks_every_model_on_one_server() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "catwalk", "test-server", "-m", str(SHOP), "--no-install"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    for ref in ("price@0.1", "scale@1.9", "scale@1.10"):
        assert re.search(rf"test-server {re.escape(ref)}: all \d+ step\(s\) passed", out), out
    assert "4 of 4 passed" in out


def test_the_debug_server_serves_a_repository(tmp_path: Path) -> None:
    port = free_port()
    server = ServerProcess(SHOP, port=port, debug=True)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=60, alive=server.alive)
        answer = post(url, {"model": {"name": "scale", "version": "1.9"}, "input": {"x": 3}})
        assert (answer.status_code, answer.json()["output"]) == (200, {"y": 3})
        assert answer.headers["X-Catwalk-Model"] == "scale@1.9"
        assert post(url, {"input": {"x": 3}}).status_code == 400  # two names, no default
    finally:
        server.stop()
        log = server.log_tail(40)
        server.close()
    assert "serving 3 models (price 0.1; scale 1.9, 1.10)" in log
