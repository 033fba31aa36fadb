"""A worker gives its memory back and cannot be held by a client of its socket (issue 19, 2-4).

Real nginx and gunicorn: bursts of 9 MB bodies leave the workers' RSS where it was; a
client talking to the gunicorn socket itself (past nginx) is cut at the worker's deadline and
cannot take a worker's memory with unfinished bodies; metrics files stay bounded and exact
over many worker restarts.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from served import MODELS, Server, cmdline, write_config

Serve = Callable[..., Server]
SLEEPY = MODELS / "sleepy"
BATCHER = MODELS.parents[1] / "models" / "batcher"
MIB = 1 << 20
# A valid request of 9 MB (extra_data is the client's own, echoed in the answer).
BODY = json.dumps({"input": {"seconds": 0}, "extra_data": {"pad": "x" * (9 * MIB)}}).encode()


def rss(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def workers(server: Server, count: int) -> list[int]:
    pids = server.wait_pids("catwalk.server.worker.wsgi", count + 1)
    master = min(pids)
    return [pid for pid in pids if pid != master]


def run_dir(server: Server) -> Path:
    pid = server.wait_pids("catwalk.server.worker.wsgi", 1)[0]
    return Path(cmdline(pid).split()[-1])


def burst(server: Server, requests_count: int = 40, parallel: int = 8) -> list[int]:
    def post(_: int) -> int:
        reply = requests.post(
            f"{server.url}/predict",
            data=BODY,
            headers={"Content-Type": "application/json"},
            timeout=60,
        )
        return reply.status_code

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(post, range(requests_count)))


def test_bursts_of_9_mb_bodies_leave_the_workers_memory_where_it_was(
    serve: Serve, tmp_path: Path
) -> None:
    config = write_config(tmp_path, "server:\n  workers: 2\n  max_body_size: 10m\n")
    server = serve(SLEEPY, config=config)
    pids = workers(server, 2)
    assert burst(server, 8) == [200] * 8  # each worker has answered a large body once
    time.sleep(0.5)
    before = {pid: rss(pid) for pid in pids}
    for _ in range(4):
        assert burst(server) == [200] * 40
    time.sleep(0.5)
    after = {pid: rss(pid) for pid in pids}
    print({pid: (before[pid] // MIB, after[pid] // MIB) for pid in pids})
    for pid in pids:  # 160 bodies of 9 MB went through: none of them stays
        assert after[pid] - before[pid] < 40 * MIB, (before, after)


def _socket_client(path: Path) -> socket.socket:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(30)
    conn.connect(str(path))
    return conn


@pytest.mark.parametrize("model", [SLEEPY, BATCHER], ids=["unbatched", "batching"])
def test_a_client_of_the_socket_is_cut_at_the_deadline_and_cannot_hold_memory(
    serve: Serve, tmp_path: Path, model: Path
) -> None:
    config = write_config(tmp_path, "server:\n  workers: 1\n  client_timeout: 2\n")
    server = serve(model, config=config)
    [pid] = workers(server, 1)
    path = run_dir(server) / "gunicorn.sock"
    # a slow body: the head and a little, then nothing
    slow = _socket_client(path)
    slow.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    started = time.monotonic()
    answer = slow.recv(65536)
    took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"within 2 s" in answer and took < 5, (answer, took)
    assert slow.recv(1) == b""  # and closed
    slow.close()
    # 40 clients each sending 9 MB of a 10 MB body, and never the rest
    base = rss(pid)
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n"
    stop = threading.Event()

    def unfinished() -> None:
        with contextlib.suppress(OSError), _socket_client(path) as conn:
            conn.sendall(head + BODY[: 9 * MIB])
            stop.wait(30)

    threads = [threading.Thread(target=unfinished, daemon=True) for _ in range(40)]
    for thread in threads:
        thread.start()
    peak = base
    for _ in range(60):
        time.sleep(0.1)
        peak = max(peak, rss(pid))
    stop.set()
    for thread in threads:
        thread.join(10)
    print(f"worker RSS {base // MIB} MiB, at most {peak // MIB} MiB under 40 unfinished bodies")
    # One connection at a time for an unbatched model; a batching worker stops taking new
    # ones past its read budget (READ_BUDGET bodies), those it took are cut at the deadline
    # (~220 MiB measured; before the budget and the deadline: 1.1 GiB, held forever).
    bound = 64 * MIB if model == SLEEPY else 512 * MIB
    assert peak - base < bound, (base // MIB, peak // MIB)
    body = {"input": {"seconds": 0}} if model == SLEEPY else {"input": {"x": 1}}
    ok = requests.post(f"{server.url}/predict", json=body, timeout=30)
    assert ok.status_code == 200, ok.text


def _scrape(server: Server) -> tuple[float, str]:
    started = time.perf_counter()
    reply = server.get("/metrics")
    assert reply.status_code == 200
    return time.perf_counter() - started, reply.text


def _predicts(text: str) -> float:
    found = re.search(r'^catwalk_requests_total\{endpoint="/predict",status="200"\} (\S+)$',
                      text, re.M)  # fmt: skip
    return float(found.group(1)) if found else 0.0


def test_metrics_files_stay_bounded_and_exact_over_200_worker_restarts(
    serve: Serve, tmp_path: Path
) -> None:
    config = write_config(tmp_path, "server:\n  workers: 2\n  max_requests: 1\n")
    server = serve(SLEEPY, config=config)
    metrics = run_dir(server) / "metrics"
    first, _ = _scrape(server)
    answered = 0
    for _ in range(200):
        reply = server.post("/predict", json={"input": {"seconds": 0}})
        assert reply.status_code == 200, reply.text
        answered += 1
    time.sleep(1.0)  # the last workers' exits are merged
    scrapes = [_scrape(server) for _ in range(5)]
    files = glob.glob(str(metrics / "*.db"))
    print(f"{len(files)} metrics files after 200 restarts; scrape {first * 1000:.1f} ms first, "
          f"{min(t for t, _ in scrapes) * 1000:.1f} ms after")  # fmt: skip
    assert len(files) <= 16, sorted(os.path.basename(f) for f in files)
    # every answered predict is counted once, whichever worker (dead or alive) counted it
    assert _predicts(scrapes[-1][1]) == answered
    assert min(t for t, _ in scrapes) < 0.05
