#!/usr/bin/env python3
"""Throughput of ``catwalk predict`` on JSON lines, side by side with a hand-written loop.

For each model (example_models/rng, bench/models/forest) it writes ``--lines`` random inputs
to a file, then runs, as separate processes, interleaved, ``--rounds`` times each:

* ``catwalk``: ``python -m catwalk predict --no-install -m MODEL --input-file F --output OUT``
  (the real CLI: model loading, input and output validation, normalisation, progress);
* ``bare``: the loop a data scientist would write without catwalk
  (``json.loads`` -> ``Model.predict`` -> ``json.dumps``, no validation at all).

Both outputs must be the same values, line for line, before any figure is reported. Each
figure is the quietest round's wall time for the whole process (start-up included), in lines
per second; ``ratio`` is catwalk's throughput over bare's.

Usage: .venv/bin/python bench/predict_jsonl.py [--lines 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    "forest": (
        HERE / "models" / "forest",
        lambda r: {f"f{i}": r.uniform(-1.5, 1.5) for i in range(8)},
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
    with open(source, encoding="utf-8") as inputs, open(target, "w", encoding="utf-8") as out:
        for line in inputs:
            out.write(json.dumps(model.predict(json.loads(line))) + "\n")


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def same_outputs(a: Path, b: Path) -> bool:
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
            best = {system: float("inf") for system in commands}
            for _ in range(args.rounds):
                for system, command in commands.items():
                    best[system] = min(best[system], timed(command))
            if not same_outputs(outs["catwalk"], outs["bare"]):
                raise SystemExit(f"{name}: catwalk and bare outputs differ")
            rate = {system: args.lines / seconds for system, seconds in best.items()}
            rows.append((name, rate["catwalk"], best["catwalk"], rate["bare"], best["bare"]))

    print(f"{args.lines} JSON lines, best of {args.rounds} round(s), whole process wall time\n")
    print("| model | catwalk predict | bare loop | ratio |")
    print("|---|---|---|---|")
    for name, cat_rate, cat_s, bare_rate, bare_s in rows:
        print(
            f"| {name} | {cat_rate:,.0f} lines/s ({cat_s:.2f} s) "
            f"| {bare_rate:,.0f} lines/s ({bare_s:.2f} s) | {cat_rate / bare_rate:.2f} |"
        )


if __name__ == "__main__":
    main()
