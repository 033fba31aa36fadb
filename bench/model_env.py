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

Usage: .venv/bin/python bench/model_env.py [--runs 5] [--skip-torch]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-torch", action="store_true")
    options = parser.parse_args()
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
