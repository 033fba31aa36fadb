#!/usr/bin/env python3
"""Native thread pools under production catwalk: the defaults vs hand-tuned settings, and main.

Issue 17: LightGBM deadlocked under the defaults (its OpenMP pool started in the preloading
gunicorn master), and once that was avoided (``preload: false``) every worker ran a thread per
CPU: 13x slower than ``OMP_NUM_THREADS=1``. This script serves two zoo models (trained now by
tests/zoo/builders.py: LightGBM and a small PyTorch network) with production catwalk, one
variant after another in ONE run, and measures req/s with wrk (``taskset -c 1 wrk -t1 -c32``,
a discarded warm-up run first, the quietest of ``--rounds`` attempts kept):

  defaults          this tree, no setting at all
  omp1              this tree, OMP_NUM_THREADS=1 in the environment (hand-tuned)
  tpw1-nopreload    this tree, server.threads_per_worker: 1, preload: false (hand-tuned)
  tpw2              this tree, server.threads_per_worker: 2 (hand-tuned)
  main-defaults     main's tree (git archive main), no setting: the "before"
  main-nopreload    main's tree, preload: false (the deadlock avoided, pools oversubscribed)
  main-omp1         main's tree, OMP_NUM_THREADS=1 (hand-tuned on main)

A variant whose POST /predict never answers (the deadlock) is reported as such. The target:
defaults >= 0.9x the best hand-tuned variant, per model.

Usage: .venv/bin/python bench/threads.py [--models lightgbm,torch] [--duration 8]
       [--warmup 2] [--rounds 1] [--conns 32] [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "zoo"))

from builders import build_model  # noqa: E402
from run import busy_ticks, free_port, parse_wrk, run_wrk, tree  # noqa: E402

# Seconds a variant gets to answer its first POST /predict before it counts as deadlocked.
READY_TIMEOUT = 45.0


@dataclass(frozen=True)
class Variant:
    name: str
    tree: str  # "this" or "main"
    config: str = ""  # application.yml's server: lines
    env: tuple[tuple[str, str], ...] = ()
    tuned: bool = True  # a hand-tuned setting (the defaults are not)


VARIANTS = (
    Variant("defaults", "this", tuned=False),
    Variant("omp1", "this", env=(("OMP_NUM_THREADS", "1"),)),
    Variant("tpw1-nopreload", "this", "  threads_per_worker: 1\n  preload: false\n"),
    Variant("tpw2", "this", "  threads_per_worker: 2\n"),
    Variant("main-defaults", "main", tuned=False),
    Variant("main-nopreload", "main", "  preload: false\n", tuned=False),
    Variant("main-omp1", "main", env=(("OMP_NUM_THREADS", "1"),)),
)


@dataclass
class Result:
    model: str
    variant: str
    rps: float | None  # None: no answer (deadlock)
    p99_ms: float | None
    errors: int
    other_cores: float
    note: str = ""


def main_tree(into: Path) -> Path:
    """main's src/ (git archive), for the "before" variants."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "main", "src"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def environment(src: Path, variant: Variant) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("MODEL_PATH", "SERVER_CONFIG", "SERVER_PORT", "RUN_TESTS", "OMP_NUM_THREADS"):
        env.pop(name, None)
    for name in ("SERVER_WORKERS", "SERVER_THREADS_PER_WORKER", "MKL_NUM_THREADS"):
        env.pop(name, None)
    env["PYTHONPATH"] = str(src)
    env["PATH"] = env.get("PATH", "") + ":/usr/sbin"
    env.update(dict(variant.env))
    return env


def serve(
    model: Path, variant: Variant, src: Path, out: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    args = [sys.executable, "-m", "catwalk", "serve", "--no-install", "--no-run-tests"]
    args += ["-m", str(model), "--server-port", str(port)]
    if variant.config:
        config = out / f"{model.name}-{variant.name}.yml"
        config.write_text("server:\n" + variant.config, encoding="utf-8")
        args += ["--server-config", str(config)]
    log = open(out / f"server-{model.name}-{variant.name}.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, env=environment(src, variant), cwd=ROOT
    )
    return proc, port


def first_answer(url: str, body: bytes, proc: subprocess.Popen[bytes]) -> str | None:
    """None once POST /predict answers 200; else why not (deadlock, exit)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"serve exited with {proc.returncode}"
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                if reply.status == 200:
                    return None
        except OSError:
            pass
        time.sleep(0.5)
    return f"no answer to POST /predict within {READY_TIMEOUT:g} s (deadlock)"


def stop(proc: subprocess.Popen[bytes]) -> None:
    pids = tree(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(20)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait()


def measure(
    model: Path, variant: Variant, src: Path, body: Path, args: argparse.Namespace, out: Path
) -> Result:
    proc, port = serve(model, variant, src, out)
    url = f"http://127.0.0.1:{port}/predict"
    try:
        problem = first_answer(url, body.read_bytes(), proc)
        if problem is not None:
            return Result(model.name, variant.name, None, None, 0, 0.0, problem)
        run_wrk(url, body, args.conns, args.warmup)
        busy0, total0 = busy_ticks()
        text = run_wrk(url, body, args.conns, args.duration)
        busy1, total1 = busy_ticks()
        (out / f"wrk-{model.name}-{variant.name}.txt").write_text(text)
        rps, _, p99, errors = parse_wrk(text)
        cores = os.cpu_count() or 1
        busy = cores * (busy1 - busy0) / max(total1 - total0, 1)
        return Result(model.name, variant.name, rps, p99, errors, round(busy, 2))
    finally:
        stop(proc)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="lightgbm,torch")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--variants", default=",".join(v.name for v in VARIANTS))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = args.out or HERE / "results" / f"threads-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    chosen = [v for v in VARIANTS if v.name in args.variants.split(",")]
    with tempfile.TemporaryDirectory(prefix="catwalk-bench-threads-") as tmp:
        trees = {"this": ROOT / "src", "main": main_tree(Path(tmp) / "main")}
        results: list[Result] = []
        for kind in args.models.split(","):
            model = build_model(kind, Path(tmp) / kind)
            row = json.loads((model / "test_data.json").read_text())[0]["X"]
            body = out / f"body-{kind}.json"
            body.write_text(json.dumps({"input": row}))
            best: dict[str, Result] = {}
            for _ in range(args.rounds):  # interleaved: a burst of load hits every variant
                for variant in chosen:
                    result = measure(model, variant, trees[variant.tree], body, args, out)
                    print(
                        f"{kind:9} {variant.name:15} "
                        + (f"{result.rps:8.0f} req/s" if result.rps else result.note),
                        flush=True,
                    )
                    kept = best.get(variant.name)
                    if kept is None or (result.rps or 0) > (kept.rps or 0):
                        best[variant.name] = result
            results += best.values()
        print()
        print(report(results, chosen, args))
        (out / "table.md").write_text(report(results, chosen, args) + "\n")
    return 0


def report(results: list[Result], variants: list[Variant], args: argparse.Namespace) -> str:
    tuned = {v.name for v in variants if v.tuned}
    lines = [
        f"wrk -c{args.conns}, {args.duration} s, best of {args.rounds} round(s); "
        f"host load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        "",
        "| model | variant | req/s | p99 ms | errors | busy cores | vs best hand-tuned |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for model in dict.fromkeys(r.model for r in results):
        rows = [r for r in results if r.model == model]
        best = max((r.rps or 0 for r in rows if r.variant in tuned), default=0)
        for r in rows:
            ratio = f"{r.rps / best:.2f}" if r.rps and best else "-"
            rps = f"{r.rps:,.0f}" if r.rps else r.note
            p99 = f"{r.p99_ms:.1f}" if r.p99_ms is not None else "-"
            lines.append(
                f"| {model} | {r.variant} | {rps} | {p99} | {r.errors} | {r.other_cores} "
                f"| {ratio} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
