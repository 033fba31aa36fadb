#!/usr/bin/env python3
"""Cold start: seconds from starting ``catwalk serve`` (production mode) to its first 200.

For each system, ``--runs`` times (alternating, so that a burst of foreign load on the shared
host does not fall on one system only): start the server, POST the rng example's request
every 5 ms until one answers 200 with the right score, note the time, stop the server.
Prints the best and the median per system. Systems: ``catwalk`` (the real CLI with its
defaults) and ``bare`` (bench/serve.py bare: the same production machinery around a bare
Flask app on the seed's worker model, gunicorn sync, started without the CLI).

Usage: .venv/bin/python bench/coldstart.py [--runs 5] [--systems catwalk,bare]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import run  # bench/run.py: free_port, python_env, SCORE

HERE = Path(__file__).resolve().parent


def once(system: str) -> float:
    port = run.free_port()
    if system == "catwalk":
        args = [sys.executable, "-m", "catwalk", "serve", "--no-install", "-m", str(run.RNG),
                "--server-port", str(port)]  # fmt: skip
        body = (HERE / "payloads" / "catwalk.json").read_bytes()
    else:
        args = [sys.executable, str(HERE / "serve.py"), "bare", str(port), *run.BARE_TUNING]
        body = (HERE / "payloads" / "bare.json").read_bytes()
    url = f"http://127.0.0.1:{port}/predict"
    started = time.monotonic()
    proc = subprocess.Popen(
        args,
        env=run.python_env(),
        cwd=run.ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.monotonic() - started < 60:
            if proc.poll() is not None:
                raise RuntimeError(f"{system} exited with {proc.returncode}")
            try:
                request = urllib.request.Request(
                    url, data=body, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=1) as reply:
                    if reply.status == 200 and run.SCORE in reply.read().decode():
                        return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError(f"{system}: no 200 within 60 s")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default=5, type=int)
    parser.add_argument("--systems", default="catwalk,bare")
    args = parser.parse_args()
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin"
    systems = [s for s in args.systems.split(",") if s]
    times: dict[str, list[float]] = {s: [] for s in systems}
    for _ in range(args.runs):
        for system in systems:
            times[system].append(once(system))
            run.log(f"{system}: first 200 after {times[system][-1]:.3f} s")
    print("| system | best s | median s | runs |")
    print("|---|---:|---:|---:|")
    for system, found in times.items():
        print(f"| {system} | {min(found):.3f} | {statistics.median(found):.3f} | {len(found)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
