#!/usr/bin/env python3
"""What /metrics costs on the hot path: catwalk with ``server.metrics: true`` vs ``false``.

Two measurements, side by side in one run, on example_models/rng:

1. **In process**: the WSGI app called directly (no sockets), ``POST /predict``, metrics off,
   metrics on with prometheus-client in memory (debug mode), and metrics on in its
   multiprocess mode (production: values in mmap'ed files), each the best of ``--repeat``
   rounds of ``--number`` calls, in µs per request.
2. **Production** (nginx + gunicorn, ``--workers`` workers): two ``catwalk serve`` servers,
   metrics off and on, driven by wrk (``taskset -c 1 wrk -t1 -cN``), ``--rounds`` interleaved
   rounds, the best round of each kept (the host is shared, so noise only ever slows a run).

Usage: .venv/bin/python bench/metrics_overhead.py [--number 20000] [--repeat 7]
       [--conns 32] [--duration 10] [--rounds 3] [--workers 2] [--skip-server]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RNG = ROOT / "example_models" / "rng"
SCORE = "0.9417154046806644"
BODY = json.dumps({"input": {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}}).encode()


def in_process(number: int, repeat: int) -> dict[str, float]:
    """µs per POST /predict through the WSGI app, metrics off and on (this process's mode)."""
    from wsgi_environ import predict_environ  # this script's folder

    from catwalk.config import ServerSettings
    from catwalk.model import load_model
    from catwalk.server.app import create_app
    from catwalk.server.logs import configure_logging
    from catwalk.spec import load_spec

    configure_logging("INFO")
    sink = io.StringIO()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)  # measure the log line's formatting, not a terminal

    def call(app: Any) -> Callable[[], Any]:
        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            assert status.startswith("200"), status

        def once() -> Any:
            return b"".join(app(predict_environ(BODY), start_response))

        return once

    results: dict[str, float] = {}
    apps = {
        "off": create_app(load_model(load_spec(RNG)), ServerSettings(metrics=False)),
        "on": create_app(load_model(load_spec(RNG)), ServerSettings(metrics=True)),
    }
    calls = {name: call(app) for name, app in apps.items()}
    # Many short rounds, the two apps alternating, the best round of each kept: a noisy
    # moment on this shared host slows one round, never the minimum.
    chunk = max(number // 20, 100)
    for _ in range(repeat * 20):
        for name, once in calls.items():
            us = timeit.timeit(once, number=chunk) / chunk * 1e6
            results[name] = min(results.get(name, us), us)
    return results


def multiprocess_in_process(number: int, repeat: int) -> dict[str, float]:
    """:func:`in_process` in a child with PROMETHEUS_MULTIPROC_DIR set (production's mode)."""
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": folder}
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(number), str(repeat)],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return {k: float(v) for k, v in json.loads(out.strip().splitlines()[-1]).items()}


# ------------------------------------------------------------------ production ----
def free_port() -> int:
    from catwalk.checks.server_checks import free_port as port

    return port()


def start_server(metrics: bool, workers: int, folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = folder / f"metrics-{'on' if metrics else 'off'}.yml"
    config.write_text(f"server:\n  workers: {workers}\n  metrics: {str(metrics).lower()}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("MODEL_PATH", "SERVER_CONFIG")}
    env["PATH"] = env.get("PATH", "") + ":/usr/sbin"
    process = subprocess.Popen(
        [sys.executable, "-m", "catwalk", "serve", "--no-install", "-m", str(RNG),
         "--server-port", str(port), "--server-config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/predict",
                data=BODY,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=2) as answer:
                if SCORE in answer.read().decode():
                    return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("server did not start")


def wrk(port: int, conns: int, duration: int, body_file: Path) -> float:
    script = HERE / "post.lua"
    command = ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "-s", str(script)]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "1", *command]
    out = subprocess.run(
        [*command, f"http://127.0.0.1:{port}/predict"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "WRK_BODY_FILE": str(body_file)},
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def production(conns: int, duration: int, rounds: int, workers: int) -> dict[str, float]:
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        body_file = Path(tmp) / "body.json"
        body_file.write_bytes(BODY)
        servers = {name: start_server(name == "on", workers, Path(tmp)) for name in ("off", "on")}
        try:
            for _name, (_, port) in servers.items():
                wrk(port, conns, 2, body_file)  # warm-up
            for _ in range(rounds):
                for name, (_, port) in servers.items():
                    best[name] = max(best.get(name, 0.0), wrk(port, conns, duration, body_file))
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(20)
    return best


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(in_process(int(sys.argv[2]), int(sys.argv[3]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-server", action="store_true")
    args = parser.parse_args()

    memory = in_process(args.number // 4, args.repeat)
    files = multiprocess_in_process(args.number // 4, args.repeat)
    print("## In process: POST /predict through the WSGI app (µs per request, best of rounds)\n")
    print("| metrics | µs | vs off |")
    print("|---|---:|---:|")
    print(f"| off | {memory['off']:.1f} | 1.00 |")
    print(
        f"| on, in memory (debug mode) | {memory['on']:.1f} | {memory['on'] / memory['off']:.3f} |"
    )
    print(
        f"| on, multiprocess files (production), vs its own off {files['off']:.1f} | "
        f"{files['on']:.1f} | {files['on'] / files['off']:.3f} |"
    )
    if args.skip_server:
        return 0
    if not shutil.which("wrk"):
        print("\nwrk missing: bash scripts/install-system-deps.sh wrk")
        return 1
    rps = production(args.conns, args.duration, args.rounds, args.workers)
    print(
        f"\n## Production (nginx + gunicorn, {args.workers} workers), wrk c={args.conns}, "
        f"{args.duration} s, best of {args.rounds} interleaved rounds\n"
    )
    print("| metrics | req/s | vs off |")
    print("|---|---:|---:|")
    print(f"| off | {rps['off']:.0f} | 1.00 |")
    print(f"| on | {rps['on']:.0f} | {rps['on'] / rps['off']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
