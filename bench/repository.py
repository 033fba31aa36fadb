#!/usr/bin/env python3
"""A model repository of 100 models against one server with one of them (issue 22).

Generates ``--models`` (100) small scikit-learn models, each a random forest trained on its own
random data (different weights, about 1 MB pickled), as model folders ``mNNN`` of one
repository folder. Then, in one run, for each of two servers (``catwalk serve`` production mode,
its defaults: one worker per core, preload):

- ``one``: ``-m <repository>/m000`` (a single model folder), ``POST /predict``;
- ``repository``: ``-m <repository>`` (every model), each request to
  ``POST /models/mNNN/predict`` with NNN drawn uniformly per request (bench/repository.lua);

it measures the time from starting the command to the first 200, the RSS and PSS summed over
the server's process tree (nginx, gunicorn's master and workers) once measured, and the
requests per second at ``--conns`` (32) over ``--duration`` seconds after a warm-up, with wrk
pinned to CPU 1 as bench/run.py does. The targets (issue 22): repository req/s at least 0.8x
the single model's; repository RSS at least 10x below 100 single-model servers (100 x the
single server's RSS); repository start under 30 s.

Usage: .venv/bin/python bench/repository.py [--models 100] [--conns 32] [--duration 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import run  # bench/run.py: free_port, tree, memory, parse_wrk, python_env

HERE = Path(__file__).resolve().parent
FEATURES = ("f0", "f1", "f2", "f3")
BODY = {"input": {"f0": 0.5, "f1": -1.0, "f2": 2.0, "f3": 0.25}}

MODEL_YML = """\
name: {name}
version: "1.0"
contact: {{name: Bench, email: bench@example.com}}
schema:
  input:
    type: object
    required: [f0, f1, f2, f3]
    properties:
      f0: {{type: number}}
      f1: {{type: number}}
      f2: {{type: number}}
      f3: {{type: number}}
  output:
    type: object
    properties:
      y: {{type: number}}
"""

MODEL_PY = """\
import os
import pickle

FEATURES = ("f0", "f1", "f2", "f3")


class Model:
    def __init__(self, path):
        with open(os.path.join(path, "forest.pkl"), "rb") as f:
            self.forest = pickle.load(f)

    def load_test_data(self, path):
        X = [{"f0": 0.5, "f1": -1.0, "f2": 2.0, "f3": 0.25}]
        return X, [self.predict(x) for x in X]

    def predict(self, X):
        return {"y": float(self.forest.predict([[X[f] for f in FEATURES]])[0])}
"""


def generate(root: Path, count: int) -> float:
    """``count`` model folders under ``root``; returns the mean size of a pickled forest (MB)."""
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor

    sizes = []
    for i in range(count):
        rng = np.random.default_rng(i)
        X = rng.normal(size=(2000, len(FEATURES)))
        y = X @ rng.normal(size=len(FEATURES)) + rng.normal(scale=0.3, size=len(X))
        forest = RandomForestRegressor(n_estimators=10, max_depth=10, random_state=i).fit(X, y)
        folder = root / f"m{i:03d}"
        folder.mkdir(parents=True)
        (folder / "model.yml").write_text(MODEL_YML.format(name=folder.name))
        (folder / "model.py").write_text(MODEL_PY)
        data = pickle.dumps(forest)
        (folder / "forest.pkl").write_bytes(data)
        sizes.append(len(data) / 1e6)
    return sum(sizes) / len(sizes)


class Served:
    """``catwalk serve`` (production) of ``path``, with its output in ``log``."""

    def __init__(self, name: str, path: Path, log: Path) -> None:
        self.name = name
        self.port = run.free_port()
        self.log = log.open("w")
        args = [sys.executable, "-m", "catwalk", "serve", "--no-install", "-m", str(path),
                "--server-port", str(self.port)]  # fmt: skip
        env = run.python_env()
        env["CATWALK_ENV_MANAGER"] = "local"
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def first_200(self, path: str, timeout: float = 120.0) -> float:
        """Seconds from the start to the first 200 on ``path``."""
        data = json.dumps(BODY).encode()
        url = f"http://127.0.0.1:{self.port}{path}"
        while time.monotonic() - self.started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                request = urllib.request.Request(
                    url, data=data, headers={"Content-Type": "application/json"}
                )
                with urllib.request.urlopen(request, timeout=2) as reply:
                    if reply.status == 200:
                        return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"{self.name}: no 200 within {timeout} s")

    def stop(self) -> None:
        pids = run.tree(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def wrk(url: str, script: Path, body: Path, conns: int, seconds: int, models: int) -> str:
    pin = ["taskset", "-c", "1"] if (os.cpu_count() or 1) > 1 else []
    args = [*pin, "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s", "--latency"]
    env = dict(os.environ, WRK_BODY_FILE=str(body), WRK_MODELS=str(models))
    out = subprocess.run(
        [*args, "-s", str(script), url], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout


def measure(
    server: Served, path: str, script: Path, body: Path, args: argparse.Namespace
) -> dict[str, float]:
    first = server.first_200(path)
    url = f"http://127.0.0.1:{server.port}{path}"
    wrk(url, script, body, args.conns, args.warmup, args.models)
    text = wrk(url, script, body, args.conns, args.duration, args.models)
    rps, p50, p99, errors = run.parse_wrk(text)
    rss, pss, procs = run.memory(run.tree(server.proc.pid))
    row = {"first_200_s": first, "rps": rps, "p50_ms": p50, "p99_ms": p99, "errors": errors,
           "rss_mib": rss, "pss_mib": pss, "procs": procs}  # fmt: skip
    run.log(f"{server.name}: {json.dumps({k: round(v, 2) for k, v in row.items()})}")
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="catwalk-bench-repo-") as tmp:
        root = Path(tmp) / "repository"
        started = time.monotonic()
        size = generate(root, args.models)
        run.log(f"{args.models} models generated in {time.monotonic() - started:.1f} s, "
                f"{size:.2f} MB each (pickled forest)")  # fmt: skip
        body = Path(tmp) / "body.json"
        body.write_text(json.dumps(BODY))
        rows = {}
        one = Served("one", root / "m000", Path(tmp) / "one.log")
        try:
            rows["one"] = measure(one, "/predict", HERE / "post.lua", body, args)
        finally:
            one.stop()
        many = Served("repository", root, Path(tmp) / "repository.log")
        try:
            rows["repository"] = measure(
                many, "/models/m000/predict", HERE / "repository.lua", body, args
            )
        except RuntimeError:
            many.log.flush()
            print((Path(tmp) / "repository.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            many.stop()
    one_row, repo = rows["one"], rows["repository"]
    ratio = repo["rps"] / one_row["rps"]
    hundred = args.models * one_row["rss_mib"]
    print(f"| server | first 200 | req/s c={args.conns} | p50 ms | p99 ms | errors | "
          "RSS MiB | PSS MiB | processes |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {row['first_200_s']:.1f} s | {row['rps']:,.0f} | {row['p50_ms']:.2f} | "
              f"{row['p99_ms']:.2f} | {row['errors']:.0f} | {row['rss_mib']:.0f} | "
              f"{row['pss_mib']:.0f} | {row['procs']:.0f} |")  # fmt: skip
    print()
    print(f"- req/s: repository / one = {ratio:.2f} (target >= 0.8)")
    print(
        f"- RSS: {args.models} single-model servers = {hundred:,.0f} MiB, the repository's "
        f"{repo['rss_mib']:.0f} MiB: {hundred / repo['rss_mib']:.1f}x below (target >= 10x)"
    )
    print(f"- start: repository's first 200 after {repo['first_200_s']:.1f} s (target < 30 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
