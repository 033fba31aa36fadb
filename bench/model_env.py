#!/usr/bin/env python3
"""Model environments: what building one costs, and what running in a cached one costs.

In one run, side by side:

- **build**: ``catwalk predict --input`` on a model folder whose environment is not built yet
  (a fresh ``CATWALK_ENV_CACHE``: uv links from its own cache), against the reference a user
  would otherwise do: ``python -m venv`` + ``pip install`` of catwalk and the same
  requirements (pip's own cache warm, pip's configuration as set). Models: ``numpy==1.26.4``
  and ``torch==2.13.0`` (from the folder pip.conf / ``PIP_FIND_LINKS`` names).
- **start**: ``catwalk predict --input`` on example_models/forest with its environment cached,
  against ``--env-manager local`` in catwalk's interpreter (whose packages already satisfy
  the folder's requirements): the price of the re-execution. Median of ``--runs``.

``--zoo`` instead builds each zoo model's environment (tests/zoo/builders.py trains the models;
the zoo extra) the way the zoo's first command does: ``catwalk predict --input`` with a fresh
``CATWALK_ENV_CACHE``, uv's cache warm, then (``--uv-cold``) with a ``UV_CACHE_DIR`` that
starts empty and is shared by the kinds in turn, as on a new machine: each wheel is fetched
once (the first kind's build also fetches catwalk's own dependencies; torch comes from the
local find-links folder) and unpacked. Each row: the build as the environment's record times
it, and the whole command.

Usage: .venv/bin/python bench/model_env.py [--runs 5] [--skip-torch]
       .venv/bin/python bench/model_env.py --zoo [--kinds lightgbm,...] [--uv-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOREST = ROOT / "example_models" / "forest"
FOREST_INPUT = '{"age": 0.03, "sex": 0.05, "bmi": 0.06, "bp": 0.02, "s1": -0.04, "s2": -0.03, "s3": -0.04, "s4": 0.0, "s5": 0.02, "s6": -0.02}'  # noqa: E501

MODEL_YML = """\
name: Bench
version: "1.0"
contact: {name: Bench, email: bench@example.com}
schema:
  input: {type: object}
  output: {type: object, properties: {version: {type: string}}}
"""
MODEL_PY = """\
import {module} as lib


class Model:
    def __init__(self, path):
        pass

    def load_test_data(self, path):
        return [{{}}], [{{"version": lib.__version__}}]

    def predict(self, X):
        return {{"version": lib.__version__}}
"""


def env_without_manager(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CATWALK_ENV_MANAGER", "MODEL_PATH")}
    env.update(extra)
    return env


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    took = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return took


def model(folder: Path, requirement: str, module: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.yml").write_text(MODEL_YML)
    (folder / "model.py").write_text(MODEL_PY.format(module=module))
    (folder / "requirements.txt").write_text(requirement + "\n")
    return folder


def build(work: Path, requirement: str, module: str) -> tuple[float, float]:
    """(catwalk's build + first predict, venv + pip install) in seconds."""
    folder = model(work / module, requirement, module)
    cache = work / f"envs-{module}"
    catwalk = timed(
        [sys.executable, "-m", "catwalk", "predict", "-m", str(folder), "--input", "{}"],
        env_without_manager(CATWALK_ENV_CACHE=str(cache)),
    )
    venv = work / f"pip-{module}"
    started = time.monotonic()
    timed([sys.executable, "-m", "venv", str(venv)], os.environ.copy())
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-e", str(ROOT)]
    timed([*pip, "-r", str(folder / "requirements.txt")], os.environ.copy(), cwd=folder)
    return catwalk, time.monotonic() - started


def start(runs: int, cache: Path) -> tuple[float, float]:
    """Median seconds of predict --input on forest: (cached environment, local)."""
    args = [sys.executable, "-m", "catwalk", "predict", "-m", str(FOREST), "--input", FOREST_INPUT]
    env = env_without_manager(CATWALK_ENV_CACHE=str(cache))
    timed(args, env)  # builds it
    venv, local = [], []
    for _ in range(runs):  # alternating: a burst of foreign load falls on both
        venv.append(timed(args, env))
        local.append(timed([*args, "--env-manager", "local"], env))
    return statistics.median(venv), statistics.median(local)


def zoo_build(folder: Path, cache: Path, **extra: str) -> tuple[float, float]:
    """(the build as its record says, the whole first ``predict --input``) in seconds."""
    rows = json.loads((folder / "test_data.json").read_text())
    cmd = [sys.executable, "-m", "catwalk", "predict", "-m", str(folder)]
    took = timed(
        [*cmd, "--input", json.dumps(rows[0]["X"])],
        env_without_manager(CATWALK_ENV_CACHE=str(cache), **extra),
    )
    (env,) = [p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return float(json.loads((env / "catwalk-env.json").read_text())["seconds"]), took


def zoo(kinds: list[str], uv_cold: bool) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "zoo"))
    from builders import build_model  # the zoo's own trainers

    with tempfile.TemporaryDirectory(prefix="bench-zoo-envs-") as tmp:
        work = Path(tmp)
        head = "| zoo model | build s (uv warm) | first predict s |"
        rule = "|---|---:|---:|"
        if uv_cold:
            head += " build s (uv cold) | first predict s |"
            rule += "---:|---:|"
        print(head)
        print(rule, flush=True)
        for kind in kinds:
            folder = build_model(kind, work / "models" / kind)
            warm = zoo_build(folder, work / f"envs-{kind}")
            row = f"| {kind} | {warm[0]:.1f} | {warm[1]:.1f} |"
            if uv_cold:
                cold = zoo_build(folder, work / f"envs-cold-{kind}", UV_CACHE_DIR=str(work / "uv"))
                row += f" {cold[0]:.1f} | {cold[1]:.1f} |"
            print(row, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--zoo", action="store_true", help="the zoo models' environments")
    parser.add_argument("--kinds", default="sklearn_pipeline,xgboost,lightgbm,catboost,torch,onnx")
    parser.add_argument("--uv-cold", action="store_true", help="--zoo: also with uv's cache empty")
    options = parser.parse_args()
    if options.zoo:
        zoo(options.kinds.split(","), options.uv_cold)
        return
    with tempfile.TemporaryDirectory(prefix="bench-model-env-") as tmp:
        work = Path(tmp)
        print("| build | catwalk (uv) s | venv + pip s | x faster |")
        print("|---|---:|---:|---:|")
        cases = [("numpy==1.26.4", "numpy")]
        if not options.skip_torch:
            cases.append(("torch==2.13.0", "torch"))
        for requirement, module in cases:
            ours, pip = build(work, requirement, module)
            print(f"| {requirement} | {ours:.1f} | {pip:.1f} | {pip / ours:.1f} |", flush=True)
        cached, local = start(options.runs, work / "envs-forest")
        print()
        print("| start (forest, predict --input) | median s |")
        print("|---|---:|")
        print(f"| cached environment (re-executed) | {cached:.2f} |")
        print(f"| --env-manager local | {local:.2f} |")
        print(f"| overhead | {cached - local:+.2f} s ({cached / local:.2f}x) |")


if __name__ == "__main__":
    main()
