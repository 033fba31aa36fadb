#!/usr/bin/env python3
"""How long the README's quickstart takes a machine: init -> test -> serve -> first prediction.

Runs, in a fresh temporary folder, the commands the README's quickstart gives (with a free port
instead of 9090) and times each: ``catwalk init``, ``catwalk test`` (test-model, then
test-server against the real production server), ``catwalk serve`` until ``POST /predict``
answers 200, and one ``catwalk predict``. A user's own time is this plus typing.

Usage: .venv/bin/python bench/quickstart.py [--debug] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from catwalk.checks.server_checks import free_port

INPUT = {"length": 5.1, "width": 3.5}


def catwalk(*args: str, cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "catwalk", *args],
        cwd=cwd,
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def serve_until_first_prediction(cwd: Path, debug: bool) -> float:
    port = free_port()
    command = [sys.executable, "-m", "catwalk", "serve", "-m", "my-model", "--server-port"]
    command += [str(port), *(["--debug"] if debug else [])]
    started = time.perf_counter()
    server = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            if server.poll() is not None:
                raise SystemExit(f"catwalk serve exited with code {server.returncode}")
            try:
                response = requests.post(
                    f"http://127.0.0.1:{port}/predict", json={"input": INPUT}, timeout=2
                )
                if response.status_code == 200:
                    return time.perf_counter() - started
            except requests.RequestException:
                pass
            time.sleep(0.05)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(20)


def one_round(debug: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="catwalk-quickstart-") as tmp:
        cwd = Path(tmp)
        times = {"init": catwalk("init", "my-model", cwd=cwd)}
        test = ["test", "-m", "my-model", *(["--debug"] if debug else [])]
        times["test (test-model + test-server)"] = catwalk(*test, cwd=cwd)
        times["serve -> first 200 on /predict"] = serve_until_first_prediction(cwd, debug)
        times["predict --input"] = catwalk(
            "predict", "-m", "my-model", "--input", '{"length": 5.1, "width": 3.5}', cwd=cwd
        )
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="the Flask development server")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.pop("MODEL_PATH", None)
    rounds = [one_round(args.debug) for _ in range(args.rounds)]
    mode = "debug" if args.debug else "production (nginx + gunicorn)"
    print(f"quickstart, {mode} server, best of {args.rounds} round(s)\n")
    print("| step | seconds |")
    print("|---|---|")
    total = 0.0
    for step in rounds[0]:
        best = min(r[step] for r in rounds)
        total += best
        print(f"| {step} | {best:.2f} |")
    print(f"| **all** | **{total:.2f}** |")


if __name__ == "__main__":
    main()
