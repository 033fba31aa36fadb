#!/usr/bin/env python3
"""Throughput of ``catwalk predict`` on JSON lines, side by side with a hand-written loop.

For each model — example_models/rng; bench/models/trees (100 pure-Python trees, no batching);
example_models/forest (a scikit-learn RandomForest with ``batching:`` and ``predict_batch``) —
it writes ``--lines`` random inputs to a file, then runs, as separate processes, interleaved,
``--rounds`` times each:

* ``catwalk``: ``python -m catwalk predict --no-install -m MODEL --input-file F --output OUT``
  (the real CLI: model loading, input and output validation, normalisation, batching, progress);
* ``bare``: the loop a data scientist would write without catwalk (``json.loads`` ->
  ``Model.predict`` -> ``json.dumps``, no validation at all; for a model with ``batching:``,
  ``Model.predict_batch`` on chunks of its ``max_batch_size``, as catwalk calls it).

Both outputs must be the same values, line for line, before any figure is reported. Each
figure is the quietest round's wall time for the whole process (start-up included), in lines
per second; ``ratio`` is catwalk's throughput over bare's.

Usage: .venv/bin/python bench/predict_jsonl.py [--lines 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MODELS: dict[str, tuple[Path, Callable[[random.Random], dict[str, Any]]]] = {
    "rng": (
        ROOT / "example_models" / "rng",
        lambda r: {
            "seed": r.randrange(10**6),
            "seed_version": r.choice([1, 2]),
            "mu": r.uniform(-10, 10),
            "sigma": r.uniform(0, 5),
        },
    ),
    "trees": (
        HERE / "models" / "trees",
        lambda r: {f"f{i}": r.uniform(-1.5, 1.5) for i in range(8)},
    ),
    "forest": (
        ROOT / "example_models" / "forest",
        lambda r: {
            name: r.gauss(0.0, 0.05)
            for name in ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
        },
    ),
}


def bare(model_dir: str, source: str, target: str) -> None:
    """The reference: the user's model in a plain loop, no catwalk."""
    spec = importlib.util.spec_from_file_location("bench_model", Path(model_dir) / "model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, model_dir)
    spec.loader.exec_module(module)
    model = module.Model(model_dir)
    spec = yaml.safe_load((Path(model_dir) / "model.yml").read_text())
    size = spec.get("batching", {}).get("max_batch_size")
    with open(source, encoding="utf-8") as inputs, open(target, "w", encoding="utf-8") as out:
        if size is None:
            for line in inputs:
                out.write(json.dumps(model.predict(json.loads(line))) + "\n")
            return
        while chunk := [json.loads(line) for line in itertools.islice(inputs, size)]:
            for output in model.predict_batch(chunk):
                out.write(json.dumps(output) + "\n")


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one child process."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{command}: exit code {process.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def same_outputs(a: Path, b: Path) -> bool:
    """Line for line equal (floats within 1e-9: numpy's float64 -> JSON is exact anyway)."""
    with a.open() as left, b.open() as right:
        return all(json.loads(x) == json.loads(y) for x, y in zip(left, right, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--bare", nargs=3, metavar=("MODEL", "IN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare(*args.bare)
        return

    rows = []
    with tempfile.TemporaryDirectory(prefix="catwalk-bench-") as tmp:
        for name in args.models.split(","):
            folder, make = MODELS[name]
            rng = random.Random(0)
            source = Path(tmp) / f"{name}.jsonl"
            with source.open("w") as f:
                for _ in range(args.lines):
                    f.write(json.dumps(make(rng)) + "\n")
            outs = {"catwalk": Path(tmp) / f"{name}.catwalk", "bare": Path(tmp) / f"{name}.bare"}
            cli = [sys.executable, "-m", "catwalk", "predict", "--no-install", "-m", str(folder)]
            commands = {
                "catwalk": [*cli, "--input-file", str(source), "--output", str(outs["catwalk"])],
                "bare": [
                    sys.executable,
                    __file__,
                    "--bare",
                    str(folder),
                    str(source),
                    str(outs["bare"]),
                ],
            }
            wall = {system: float("inf") for system in commands}
            cpu = dict(wall)
            for _ in range(args.rounds):
                for system, command in commands.items():
                    took, used = timed(command)
                    wall[system], cpu[system] = min(wall[system], took), min(cpu[system], used)
            if not same_outputs(outs["catwalk"], outs["bare"]):
                raise SystemExit(f"{name}: catwalk and bare outputs differ")
            rows.append((name, wall, cpu))

    print(f"{args.lines} JSON lines, best of {args.rounds} round(s), whole process (start-up in)")
    print("lines/s on CPU time (user + system; steady on a shared host), wall time in brackets\n")
    print("| model | catwalk predict | bare loop | ratio (CPU) | ratio (wall) |")
    print("|---|---|---|---|---|")
    for name, wall, cpu in rows:
        cells = [
            f"{args.lines / cpu[s]:,.0f} lines/s ({cpu[s]:.2f} s CPU, {wall[s]:.2f} s wall)"
            for s in ("catwalk", "bare")
        ]
        print(
            f"| {name} | {cells[0]} | {cells[1]} | {cpu['bare'] / cpu['catwalk']:.2f} "
            f"| {wall['bare'] / wall['catwalk']:.2f} |"
        )


if __name__ == "__main__":
    main()
