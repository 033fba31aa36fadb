"""Warm-up in process: what each production worker does before it accepts (issue 17)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from catwalk.model import LoadedModel, load_model
from catwalk.server.ops.readiness import Readiness
from catwalk.server.worker.warmup import Heartbeat, warm_up
from catwalk.spec import load_spec


def test_a_model_is_warmed_up_on_its_first_test_examples(
    load: Callable[[str], LoadedModel],
) -> None:
    assert warm_up(load("echo"), 10).startswith("warmed up on 2 test example(s)")
    assert warm_up(load("echo"), 1).startswith("warmed up on 1 test example(s)")
    assert warm_up(load("forest"), 10).startswith("warmed up on 10 test example(s)")  # batching
    assert warm_up(load("dataframe"), 3).startswith("warmed up on 3 test example(s)")
    assert warm_up(load("echo"), 0) == "warm-up off (runtime.warmup_examples: 0)"


def test_a_failed_warm_up_is_logged_and_the_worker_serves_on(
    load: Callable[[str], LoadedModel], caplog: pytest.LogCaptureFixture
) -> None:
    readiness = Readiness()
    with caplog.at_level(logging.ERROR):
        done = warm_up(load("raises_in_predict"), 10, readiness)
    assert done.startswith("warm-up failed: predict raised")
    assert "warm-up failed, serving anyway" in caplog.text
    assert readiness.warming is False and readiness.problem() is None


def test_ready_says_warming_up_meanwhile(tmp_path: Path) -> None:
    (tmp_path / "model.yml").write_text(
        'name: W\nversion: "1"\ncontact: {name: T, email: t@example.com}\n'
        "schema:\n  input: {type: object}\n  output: {type: object}\n"
    )
    (tmp_path / "model.py").write_text(
        "class Model:\n"
        "    def __init__(self, path): self.seen = []\n"
        "    def load_test_data(self, path): return [{}], [{}]\n"
        "    def predict(self, X): return {}\n"
    )
    model = load_model(load_spec(tmp_path))
    readiness = Readiness()
    seen: list[object] = []
    model.instance.predict = lambda X: seen.append(readiness.problem()) or {}
    warm_up(model, 1, readiness)
    assert seen == ["not ready: the model is warming up (predicting its test examples)"]
    assert readiness.problem() is None


def test_the_heartbeat_beats_while_the_warm_up_runs_and_stops_after() -> None:
    beats: list[float] = []
    with Heartbeat(lambda: beats.append(time.monotonic()), interval=0.01, limit=5):
        time.sleep(0.2)
    count = len(beats)
    assert count >= 5
    time.sleep(0.05)
    assert len(beats) == count
    beats.clear()
    with Heartbeat(lambda: beats.append(time.monotonic()), interval=0.01, limit=0.05):
        time.sleep(0.3)  # a warm-up stuck past the limit: no more beats, gunicorn ends it
    assert 1 <= len(beats) <= 8
