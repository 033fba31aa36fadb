"""``catwalk predict`` with the OTEL_* variables set: a span for the run, one per chunk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from otlp_receiver import HttpReceiver

ROOT = Path(__file__).resolve().parents[2]
RNG = ROOT / "example_models" / "rng"
LINE = b'{"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}\n'
PARENT_TRACE = "5" * 32
PARENT_SPAN = "6" * 16


def test_predict_traces_its_run_and_each_chunk_of_lines(tmp_path: Path) -> None:
    receiver = HttpReceiver()
    try:
        env = {
            **os.environ,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "TRACEPARENT": f"00-{PARENT_TRACE}-{PARENT_SPAN}-01",
            "PYTHONPATH": str(ROOT / "src"),
        }
        lines = LINE * 2500 + b'{"seed": "x"}\n'
        done = subprocess.run(
            [sys.executable, "-m", "catwalk", "predict", "--no-install", "-m", str(RNG),
             "--on-error", "skip"],
            input=lines, capture_output=True, env=env, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        assert len(done.stdout.splitlines()) == 2501
        # Exported before the command returned (the flush at its end).
        spans = receiver.wait_for(lambda got: len(got) >= 4, timeout=1)
    finally:
        receiver.stop()
    (run,) = [s for s in spans if s.name == "catwalk predict"]
    assert (run.trace_id, run.parent_span_id) == (PARENT_TRACE, PARENT_SPAN)
    assert run.attributes["catwalk.rows"] == 2501
    assert run.resource["service.name"] == "RNGModel"
    chunks = [s for s in spans if s.name == "catwalk.chunk"]
    assert [c.attributes["catwalk.chunk.rows"] for c in chunks] == [1000, 1000, 501]
    assert [c.attributes["catwalk.chunk.failed"] for c in chunks] == [0, 0, 1]
    assert {c.parent_span_id for c in chunks} == {run.span_id}


def test_predict_without_the_variables_imports_no_opentelemetry() -> None:
    code = (
        "import sys, runpy\n"
        "sys.argv = ['catwalk', 'predict', '--no-install', '-m', sys.argv[1], '--input',"
        ' \'{"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}\']\n'
        "try:\n"
        "    runpy.run_module('catwalk', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')]\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", code, str(RNG)], capture_output=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr.decode()


def test_score_traces_its_run_and_each_chunk_written(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(LINE * 50)
    receiver = HttpReceiver()
    try:
        env = {
            **os.environ,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "PYTHONPATH": str(ROOT / "src"),
        }
        done = subprocess.run(
            [sys.executable, "-m", "catwalk", "score", "--no-install", "-m", str(RNG),
             "--input", str(source), "--output", str(tmp_path / "out"), "--format", "jsonl",
             "--concurrency", "1"],
            capture_output=True, env=env, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        spans = receiver.wait_for(lambda got: any(s.name == "catwalk score" for s in got), 1)
    finally:
        receiver.stop()
    (run,) = [s for s in spans if s.name == "catwalk score"]
    assert run.attributes["catwalk.rows"] == 50
    chunks = [s for s in spans if s.name == "catwalk.chunk"]
    assert sum(c.attributes["catwalk.chunk.rows"] for c in chunks) == 50
    assert {c.parent_span_id for c in chunks} == {run.span_id}
