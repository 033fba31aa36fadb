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


def _connections_held(workers: list[int]) -> int:
    """Connections from nginx the workers hold open: their accepted, connected sockets of
    gunicorn's unix socket (/proc/net/unix: state 03, the socket's path)."""
    connected = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7].endswith("gunicorn.sock") and fields[5] == "03":
            connected.add(f"socket:[{fields[6]}]")
    held = 0
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                held += os.readlink(fd) in connected
            except OSError:  # closed meanwhile
                continue
    return held


def test_an_unbatched_worker_keeps_its_connection_alive_only_while_it_can(
    serve: Serve, tmp_path: Path
) -> None:
    """Requests one at a time reuse nginx's connection (no connect, accept and close per
    request); a slow request then holds only its worker: the quick ones go on, on a
    connection of the other, never waiting on the kept connection of the busy one."""
    server = serve(SLEEPY, config=_two_workers(tmp_path))
    workers = server.wait_pids("catwalk.server.worker.wsgi", 3)
    workers.remove(min(workers))  # the master
    body = json.dumps({"input": {"seconds": 0.0}}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    statuses = [_post(conn, body) for _ in range(100)]
    conn.close()
    assert statuses == [200] * 100
    held = _connections_held(workers)
    assert held >= 1, "no connection from nginx is kept alive after 100 requests in a row"

    clients = Clients(server.port)
    clients.start("slow", 1, 1.0)
    clients.start("quick", 1, 0.0)
    time.sleep(6.0)
    clients.finish()
    slow = [seconds for kind, status, seconds in clients.results if kind == "slow"]
    quick = sorted(seconds for kind, _, seconds in clients.results if kind == "quick")
    assert all(status == 200 for _, status, _ in clients.results)
    assert len(slow) >= 3 and len(quick) > 300, (len(slow), len(quick))
    waited = [seconds for seconds in quick if seconds > 0.5]
    print(f"{held} connection(s) kept; quick: {len(quick)}, max {quick[-1] * 1000:.1f} ms")
    assert not waited, f"{len(waited)} of {len(quick)} quick requests waited: {waited}"
