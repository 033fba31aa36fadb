"""A worker takes a connection only when it can answer it (issue 19, item 1).

Measured through real nginx and gunicorn: a killed worker loses at most the request it was
answering, and a quick request never waits behind a slow one while another worker is free.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from served import MODELS, Server, write_config

Serve = Callable[..., Server]
SLEEPY = MODELS / "sleepy"


def _post(conn: http.client.HTTPConnection, body: bytes) -> int:
    conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
    reply = conn.getresponse()
    reply.read()
    return reply.status


class Clients:
    """Threads each posting ``body`` in a loop (client keep-alive to nginx) until stopped;
    every answer's status and latency is recorded."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.stop = threading.Event()
        self.results: list[tuple[str, int, float]] = []  # (kind, status or 0, seconds)
        self.threads: list[threading.Thread] = []

    def start(self, kind: str, count: int, seconds: float) -> None:
        body = json.dumps({"input": {"seconds": seconds}}).encode()
        for _ in range(count):
            thread = threading.Thread(target=self._run, args=(kind, body), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _run(self, kind: str, body: bytes) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                status = _post(conn, body)
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.results.append((kind, status, time.perf_counter() - started))
        conn.close()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(40)


def _two_workers(tmp_path: Path) -> Path:
    return write_config(tmp_path, "server:\n  workers: 2\n  timeout: 30\n")


def test_a_killed_worker_loses_at_most_its_request_in_flight(serve: Serve, tmp_path: Path) -> None:
    server = serve(SLEEPY, config=_two_workers(tmp_path))
    workers = server.wait_pids("catwalk.server.worker.wsgi", 3)  # the master and its 2 workers
    master = min(workers)
    victim = max(pid for pid in workers if pid != master)
    clients = Clients(server.port)
    clients.start("quick", 8, 0.002)
    time.sleep(1.5)
    os.kill(victim, signal.SIGKILL)
    time.sleep(2.0)
    clients.finish()
    statuses = [status for _, status, _ in clients.results]
    failed = [status for status in statuses if status != 200]
    print(f"{len(failed)} of {len(statuses)} requests failed around the killed worker")
    assert len(statuses) > 300, len(statuses)
    assert len(failed) <= 1, f"{len(failed)} of {len(statuses)} failed: {failed}"


def test_quick_requests_never_wait_behind_a_slow_one(serve: Serve, tmp_path: Path) -> None:
    server = serve(SLEEPY, config=_two_workers(tmp_path))
    clients = Clients(server.port)
    clients.start("slow", 1, 1.0)
    clients.start("quick", 6, 0.0)
    time.sleep(8.0)
    clients.finish()
    slow = [seconds for kind, status, seconds in clients.results if kind == "slow"]
    quick = sorted(seconds for kind, _, seconds in clients.results if kind == "quick")
    assert all(status == 200 for _, status, _ in clients.results)
    assert len(slow) >= 5 and len(quick) > 1000, (len(slow), len(quick))
    p99 = quick[int(len(quick) * 0.99)]
    waited = [seconds for seconds in quick if seconds > 0.5]
    print(f"quick requests: {len(quick)}, p99 {p99 * 1000:.1f} ms, max {quick[-1] * 1000:.1f} ms")
    assert not waited, f"{len(waited)} of {len(quick)} quick requests waited: {waited}"
