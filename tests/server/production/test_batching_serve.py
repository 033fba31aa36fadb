"""Batching in production mode: real nginx -> catwalk's gunicorn workers -> the collector."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from served import RNG, ROOT, Server, write_config

Serve = Callable[..., Server]
BATCHER = ROOT / "tests" / "server" / "models" / "batcher"
LOOP_WORKER = "catwalk.server.worker.loop_worker.LoopWorker"


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(serve: Serve) -> None:
    server = serve(BATCHER)

    def send(i: int) -> requests.Response:
        x: Any = "bad" if i == 5 else i
        return server.post("/predict", json={"correlation_id": f"r{i}", "input": {"x": x}})

    with ThreadPoolExecutor(40) as pool:
        replies = list(pool.map(send, range(40)))
    for i, reply in enumerate(replies):
        body = reply.json()
        assert body["correlation_id"] == f"r{i}"
        if i == 5:
            assert reply.status_code == 400, reply.text
            assert "input.x" in body["output"]["message"], body
        else:
            assert reply.status_code == 200, reply.text
            assert body["input"] == {"x": i} and body["output"] == {"y": 2.0 * i}
    log = server.output()
    assert f"Using worker: {LOOP_WORKER}" in log
    assert "POST /predict 200" in log and "correlation_id=r7" in log  # the request log line


def test_unbatched_models_get_the_same_worker(serve: Serve) -> None:
    assert f"Using worker: {LOOP_WORKER}" in serve(RNG).output()


def test_batching_can_be_turned_off_per_deployment(serve: Serve, tmp_path: Path) -> None:
    config = write_config(tmp_path, "server:\n  batching:\n    enabled: false\n")
    server = serve(BATCHER, config=config)
    assert server.post("/predict", json={"input": {"x": 2}}).json()["output"] == {"y": 4.0}
    metrics = requests.get(server.url + "/metrics", timeout=5).text
    batches = [
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("catwalk_batch_size_count")
    ]
    assert sum(batches) == 0, metrics  # no batch was ever formed


def test_sigterm_lets_batched_requests_in_flight_finish(serve: Serve) -> None:
    server = serve(BATCHER)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(server.post, "/predict", json={"input": {"x": 1.5, "do": "sleep"}})
        time.sleep(0.5)  # the request is now in the model (1.5 s)
        server.proc.send_signal(signal.SIGTERM)
        reply = slow.result(timeout=10)
    assert reply.status_code == 200, reply.text
    assert server.wait_exit(12) == 0, server.output()
    assert server.leftovers() == []


def test_a_stuck_batch_gets_504_and_its_worker_is_replaced(serve: Serve, tmp_path: Path) -> None:
    config = write_config(tmp_path, "server:\n  timeout: 1\n  workers: 1\n")
    server = serve(BATCHER, config=config)
    reply = server.post(
        "/predict", json={"correlation_id": "stuck", "input": {"x": 8, "do": "sleep"}}
    )
    assert reply.status_code == 504, reply.text
    assert "server.timeout" in reply.json()["output"]["message"]
    deadline = time.monotonic() + 10
    while "worker timeout: a request ran longer than server.timeout (1 s)" not in server.output():
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.2)
    # The line names the stuck request, by the id its client got with the 504.
    [line] = [x for x in server.output().splitlines() if "worker timeout: a request" in x]
    assert reply.json()["correlation_id"] in line, line
    # A new worker answers.
    deadline = time.monotonic() + 10
    while True:
        try:
            reply = server.post("/predict", json={"input": {"x": 1}})
            if reply.status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.2)
    assert reply.json()["output"] == {"y": 2.0}


def test_a_batch_cut_by_a_stop_is_answered_503_and_logged(serve: Serve, tmp_path: Path) -> None:
    config = write_config(tmp_path, "server:\n  workers: 1\n  graceful_timeout: 2\n")
    server = serve(BATCHER, config=config)
    with ThreadPoolExecutor(1) as pool:
        cut = pool.submit(
            requests.post, f"{server.url}/predict", timeout=30,
            json={"input": {"x": 30, "do": "sleep"}}, headers={"X-Correlation-Id": "too-slow"},
        )  # fmt: skip
        time.sleep(0.7)  # in the model now, for 30 s
        server.proc.send_signal(signal.SIGTERM)
        reply = cut.result(15)
    assert reply.status_code == 503, (reply.text, server.output())
    assert reply.json()["correlation_id"] == "too-slow"
    assert "server.graceful_timeout (2 s)" in reply.json()["output"]["message"]
    assert server.wait_exit(15) == 0, server.output()
    log = server.output()
    cut_lines = [line for line in log.splitlines() if "correlation_id=too-slow" in line]
    assert "request cut unanswered" in cut_lines[0], cut_lines
    assert "503 the server is shutting down" in cut_lines[1], cut_lines
    assert "Traceback" not in log and "POST /predict 200" not in log


def _together(server: Server, bodies: list[dict[str, Any]]) -> list[requests.Response]:
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(
            pool.map(
                lambda body: requests.post(f"{server.url}/predict", json=body, timeout=30), bodies
            )
        )


def test_a_stuck_batch_is_logged_with_each_requests_own_correlation_id(
    serve: Serve, tmp_path: Path
) -> None:
    config = write_config(tmp_path, "server:\n  timeout: 1\n  workers: 1\n")
    server = serve(BATCHER, config=config)
    bodies: list[dict[str, Any]] = [
        {"correlation_id": f"stuck-{i}", "input": {"x": 8, "do": "sleep"}} for i in range(3)
    ]
    assert [reply.status_code for reply in _together(server, bodies)] == [504] * 3
    deadline = time.monotonic() + 10
    while "worker timeout: a request ran longer" not in server.output():
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.2)
    time.sleep(0.5)
    lines = [x for x in server.output().splitlines() if "worker timeout: a request" in x]
    # Each request the worker had read is named by the id in its own body (the requests of
    # one batch share the worker's one thread, not their state).
    named = [re.search(r"correlation_id=(\S+)", x).group(1) for x in lines]  # type: ignore[union-attr]
    assert named and len(set(named)) == len(named), lines
    assert set(named) <= {"stuck-0", "stuck-1", "stuck-2"}, lines


def test_a_request_cut_by_a_stop_gets_503_with_the_correlation_id_of_its_body(
    serve: Serve, tmp_path: Path
) -> None:
    config = write_config(tmp_path, "server:\n  workers: 1\n  graceful_timeout: 2\n")
    server = serve(BATCHER, config=config)
    with ThreadPoolExecutor(1) as pool:
        cut = pool.submit(
            requests.post, f"{server.url}/predict", timeout=30,
            json={"correlation_id": "cut-in-body", "input": {"x": 30, "do": "sleep"}},
        )  # fmt: skip
        time.sleep(0.7)  # in the model now, for 30 s
        server.proc.send_signal(signal.SIGTERM)
        reply = cut.result(15)
    assert reply.status_code == 503, (reply.text, server.output())
    assert reply.json()["correlation_id"] == "cut-in-body"
    assert server.wait_exit(15) == 0, server.output()
    [line] = [x for x in server.output().splitlines() if "request cut unanswered" in x]
    assert "correlation_id=cut-in-body" in line, line


def test_one_bad_request_in_32_fails_alone_through_nginx(serve: Serve) -> None:
    server = serve(BATCHER)
    bodies: list[dict[str, Any]] = [
        {"correlation_id": f"r-{i}", "input": {"x": i}} for i in range(32)
    ]
    bodies[13]["input"]["do"] = "raise"  # predict_batch raises for any batch holding it
    replies = _together(server, bodies)
    failed = [i for i, reply in enumerate(replies) if reply.status_code != 200]
    assert failed == [13], [(r.status_code, r.text) for r in replies]
    assert replies[13].status_code == 500 and replies[13].json()["correlation_id"] == "r-13"
    assert all(
        reply.json()["output"] == {"y": 2.0 * i} for i, reply in enumerate(replies) if i != 13
    )
