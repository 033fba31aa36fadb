"""Production mode end to end: real nginx in front of real gunicorn."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from served import (
    MODELS,
    RNG,
    RNG_INPUT,
    RNG_SCORE,
    Server,
    child_env,
    cmdline,
    running,
    write_config,
)

from catwalk.checks.server_checks import free_port

Serve = Callable[..., Server]


def test_predict_info_status(serve: Serve) -> None:
    server = serve(RNG)
    reply = server.post("/predict", json={"input": RNG_INPUT})
    assert reply.status_code == 200, reply.text
    assert reply.json()["output"] == {"score": RNG_SCORE}
    assert reply.headers["Content-Type"].startswith("application/json")
    info = server.get("/info").json()
    assert info["name"] == "RNGModel" and info["version"] == "0.0.1"
    assert server.get("/status").status_code == 200
    # both children and their workers are there
    assert len(server.pids("nginx: master")) == 1
    assert len(server.wait_pids("catwalk.server.worker.wsgi", 1 + (os.cpu_count() or 1))) == 1 + (
        os.cpu_count() or 1
    )  # master + one worker per core


def test_model_that_raises_gives_500_json_and_server_stays_up(serve: Serve) -> None:
    server = serve(MODELS / "flaky")
    for _ in range(3):
        reply = server.post("/predict", json={"input": {"x": -1}})
        assert reply.status_code == 500
        assert reply.headers["Content-Type"].startswith("application/json")
        assert "negative x" in reply.json()["output"]["message"]
    ok = server.post("/predict", json={"input": {"x": 2}})
    assert ok.status_code == 200 and ok.json()["output"] == {"x": 2}


def test_too_large_body_is_413_json(serve: Serve, tmp_path: Path) -> None:
    config = write_config(tmp_path, "server:\n  max_body_size: 1k\n")
    server = serve(RNG, config=config)
    reply = server.post("/predict", data=b'{"input": "' + b"x" * 4096 + b'"}')
    assert reply.status_code == 413
    assert reply.headers["Content-Type"] == "application/json"
    assert "1k" in reply.json()["output"]["message"]
    assert server.post("/predict", json={"input": RNG_INPUT}).status_code == 200


def test_sigterm_stops_everything_within_10_s(serve: Serve) -> None:
    server = serve(RNG)
    tree = server.tree
    assert tree
    [nginx] = server.pids("nginx: master")
    run_dir = Path(cmdline(nginx).split(" -p ")[1].split()[0])
    assert run_dir.is_dir()
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    code = server.wait_exit(12)
    assert code == 0, server.output()
    assert time.monotonic() - started < 10
    assert server.leftovers() == [], server.output()
    assert "received SIGTERM" in server.output()
    assert not run_dir.exists()


def test_sigterm_lets_requests_in_flight_finish(serve: Serve) -> None:
    server = serve(MODELS / "flaky")
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(server.post, "/predict", json={"input": {"x": 1000}})
        time.sleep(0.5)  # the request is now inside predict (1.5 s)
        server.proc.send_signal(signal.SIGTERM)
        reply = slow.result(timeout=10)
    assert reply.status_code == 200 and reply.json()["output"] == {"x": 1000}
    assert server.wait_exit(12) == 0, server.output()
    assert server.leftovers() == []


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare"
)
def test_as_pid_1_it_stops_cleanly_and_reaps(serve: Serve) -> None:
    # A container without --init: catwalk is PID 1 of its own PID namespace.
    wrap = ("unshare", "--pid", "--fork", "--mount-proc")
    server = serve(RNG, wrap=wrap)
    catwalk = server.catwalk_pid
    status = Path(f"/proc/{catwalk}/status").read_text()
    [nspid] = [line.split()[-1] for line in status.splitlines() if line.startswith("NSpid:")]
    assert nspid == "1"
    assert server.post("/predict", json={"input": RNG_INPUT}).status_code == 200
    os.kill(catwalk, signal.SIGTERM)  # unshare itself does not forward signals
    assert server.wait_exit(12) == 0, server.output()
    assert server.leftovers() == []


def test_sigint_stops_too(serve: Serve) -> None:
    server = serve(RNG)
    server.proc.send_signal(signal.SIGINT)
    assert server.wait_exit(12) == 0, server.output()
    assert server.leftovers() == []


def test_killed_gunicorn_master_stops_nginx_and_exits_non_zero(serve: Serve) -> None:
    server = serve(RNG)
    [master] = [p for p in server.pids("catwalk.server.worker.wsgi") if p in _children(server)]
    os.kill(master, signal.SIGKILL)
    code = server.wait_exit(12)
    assert code not in (None, 0), server.output()
    assert server.leftovers() == [], server.output()
    assert "gunicorn" in server.output() and "exited unexpectedly" in server.output()


def test_killed_nginx_stops_gunicorn_and_exits_non_zero(serve: Serve) -> None:
    server = serve(RNG)
    [master] = server.pids("nginx: master")
    os.kill(master, signal.SIGKILL)
    code = server.wait_exit(12)
    assert code not in (None, 0), server.output()
    assert server.leftovers() == [], server.output()


def test_two_servers_side_by_side(serve: Serve) -> None:
    one, two = serve(RNG), serve(MODELS / "flaky")
    assert one.post("/predict", json={"input": RNG_INPUT}).json()["output"]["score"] == RNG_SCORE
    assert two.post("/predict", json={"input": {"x": 5}}).json()["output"] == {"x": 5}
    one.stop()
    assert two.post("/predict", json={"input": {"x": 6}}).json()["output"] == {"x": 6}


def test_port_in_use_is_a_clear_error(serve: Serve) -> None:
    first = serve(RNG)
    second = serve(RNG, port=first.port, ready=False)
    assert second.wait_exit(15) == 1
    assert f"port {first.port} is already in use" in second.output()
    assert first.get("/status").status_code == 200


def test_nginx_missing_is_a_clear_error(serve: Serve) -> None:
    env = child_env()
    venv_bin = str(Path(os.sys.executable).parent)  # type: ignore[attr-defined]
    env["PATH"] = f"{venv_bin}:/usr/bin:/bin"
    server = serve(RNG, ready=False, env=env)
    assert server.wait_exit(15) == 1
    out = server.output()
    assert "nginx is not" in out, out
    assert "install" in out or "PATH" in out
    assert "Traceback" not in out


def test_model_that_cannot_load_fails_fast_and_clearly(serve: Serve, tmp_path: Path) -> None:
    for preload in ("true", "false"):
        config = write_config(tmp_path, f"server:\n  preload: {preload}\n")
        started = time.monotonic()
        server = serve(MODELS / "broken_init", config=config, ready=False)
        code = server.wait_exit(20)
        out = server.output()
        assert code not in (None, 0), out
        assert time.monotonic() - started < 15
        assert "weights.bin is missing" in out, out
        assert server.leftovers() == []
        assert not [p for p in server.tree if running(p)]


def test_preload_loads_the_model_once(serve: Serve, tmp_path: Path) -> None:
    for preload, loads in (("true", 1), ("false", 2)):
        pids = tmp_path / f"pids-{preload}.txt"
        config = write_config(tmp_path, f"server:\n  workers: 2\n  preload: {preload}\n")
        env = child_env(LOADS_PID_FILE=str(pids))
        server = serve(MODELS / "loads_pid", config=config, env=env)
        server.post("/predict", json={"input": {"x": 1}})
        server.wait_pids("catwalk.server.worker.wsgi", 3)  # every worker has booted (and loaded)
        deadline = time.monotonic() + 10
        while len(pids.read_text().split()) < loads and time.monotonic() < deadline:
            time.sleep(0.1)
        loaded = [int(x) for x in pids.read_text().split()]
        assert len(loaded) == loads, loaded
        masters = [p for p in server.pids("catwalk.server.worker.wsgi") if p in _children(server)]
        assert (loaded == masters) is (preload == "true")
        server.stop()


def test_workers_setting(serve: Serve, tmp_path: Path) -> None:
    server = serve(RNG, config=write_config(tmp_path, "server:\n  workers: 3\n"))
    assert len(server.wait_pids("catwalk.server.worker.wsgi", 4)) == 4  # master + 3


def test_nginx_is_batch_scheduled_and_nothing_else_is(serve: Serve) -> None:
    """nginx, master and workers, runs SCHED_BATCH (woken by an answer, it must not preempt
    the worker that wrote it); the supervisor and gunicorn's processes keep the default."""
    server = serve(RNG)
    nginx = server.wait_pids("nginx: ", 2)  # the master and at least one worker
    workers = server.pids("catwalk.server.worker.wsgi")
    assert len(workers) >= 2, server.output()
    assert {pid: os.sched_getscheduler(pid) for pid in nginx} == dict.fromkeys(
        nginx, os.SCHED_BATCH
    )
    others = [server.proc.pid, *workers]
    assert {pid: os.sched_getscheduler(pid) for pid in others} == dict.fromkeys(
        others, os.SCHED_OTHER
    )
    assert server.post("/predict", json={"input": RNG_INPUT}).json()["output"]["score"] == RNG_SCORE


def _children(server: Server) -> list[int]:
    """Direct children of the catwalk process (the gunicorn and nginx masters)."""
    out = []
    for pid in server.tree:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == server.proc.pid:
            out.append(pid)
    return out


def test_free_port_helper() -> None:
    assert 0 < free_port() < 65536
    assert requests  # imported for the fixtures' type
