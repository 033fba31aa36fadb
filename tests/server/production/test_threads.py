"""Native thread pools: the plan (who decides, why), the master's environment, the thread
check that turns preload off, and the settings that feed them (issue 17)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from catwalk.config import load_settings
from catwalk.errors import ConfigError, SpecError
from catwalk.server.production.threads import (
    POOL_VARIABLES,
    master_environment,
    plan_threads,
    thread_count,
    threads_started,
)
from catwalk.spec import parse_spec
from catwalk.spec_runtime import DEFAULT_WARMUP_EXAMPLES


def test_by_default_workers_times_threads_fit_the_cpus() -> None:
    plan = plan_threads(None, None, 4, environ={}, cpus=16)
    assert (plan.threads, plan.reason) == (4, "16 usable CPUs / 4 workers")
    assert plan_threads(None, None, 2, environ={}, cpus=2).threads == 1
    assert plan_threads(None, None, 8, environ={}, cpus=2).threads == 1  # never 0
    assert plan.describe(4) == "4 workers x 4 threads (16 usable CPUs / 4 workers)"


def test_the_deployment_wins_over_the_model_and_the_model_over_omp() -> None:
    env = {"OMP_NUM_THREADS": "5"}
    assert plan_threads(3, 2, 2, environ=env, cpus=8).reason == "server.threads_per_worker"
    assert plan_threads(None, 2, 2, environ=env, cpus=8).threads == 2
    plan = plan_threads(None, None, 2, environ=env, cpus=8)
    assert (plan.threads, plan.reason) == (5, "OMP_NUM_THREADS in the environment")
    assert plan_threads(None, None, 2, environ={"OMP_NUM_THREADS": "x"}, cpus=8).threads == 4


def test_the_master_starts_every_pool_at_one_thread() -> None:
    env = master_environment({"PATH": "/bin", "OMP_NUM_THREADS": "8"})
    assert env["PATH"] == "/bin"
    assert all(env[name] == "1" for name in POOL_VARIABLES)


def test_a_thread_started_while_loading_makes_forking_unsafe() -> None:
    before = thread_count()
    assert threads_started(before) is None
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    try:
        reason = threads_started(before)
        assert reason is not None and reason.startswith("loading the model started 1 thread(s)")
    finally:
        stop.set()
        thread.join()


def test_libgomp_starts_no_thread_under_the_masters_environment() -> None:
    # The premise of preload: with the master's variables, loading scikit-learn's OpenMP and
    # numpy's BLAS and using them leaves this process with its one thread.
    code = (
        "import os, numpy as np, sklearn.ensemble;"
        "from sklearn.ensemble import HistGradientBoostingClassifier as H;"
        "X = np.random.rand(2000, 8); H(max_iter=5).fit(X, X[:, 0] > .5).predict(X);"
        "from catwalk.server.production.threads import thread_count; print(thread_count())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=master_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "1"


# ------------------------------------------------------------------ settings ----
def _yml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "application.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_threads_per_worker_in_application_yml(tmp_path: Path) -> None:
    assert load_settings(None).threads_per_worker is None
    settings = load_settings(_yml(tmp_path, "server:\n  threads_per_worker: 3\n"))
    assert settings.threads_per_worker == 3
    with pytest.raises(ConfigError, match=r"server.threads_per_worker: must be a whole number"):
        load_settings(_yml(tmp_path, "server:\n  threads_per_worker: 0\n"))


def test_server_threads_per_worker_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVER_THREADS_PER_WORKER", "2")
    assert (
        load_settings(_yml(tmp_path, "server:\n  threads_per_worker: 3\n")).threads_per_worker == 2
    )
    assert load_settings(None).threads_per_worker == 2
    monkeypatch.setenv("SERVER_THREADS_PER_WORKER", "many")
    with pytest.raises(ConfigError, match="SERVER_THREADS_PER_WORKER: 'many' is not a whole"):
        load_settings(None)


def _spec(runtime: Any) -> Any:
    data = {
        "name": "M",
        "version": "1",
        "contact": {"name": "T", "email": "t@example.com"},
        "schema": {"input": {"type": "object"}, "output": {"type": "object"}},
        "runtime": runtime,
    }
    return parse_spec(data, Path("/nowhere"))


def test_model_yml_runtime() -> None:
    assert _spec(None).runtime.threads_per_worker is None
    assert _spec(None).runtime.warmup_examples == DEFAULT_WARMUP_EXAMPLES
    runtime = _spec({"threads_per_worker": 2, "warmup_examples": 0}).runtime
    assert (runtime.threads_per_worker, runtime.warmup_examples) == (2, 0)


@pytest.mark.parametrize(
    ("runtime", "message"),
    [
        ({"threads_per_worker": 0}, "runtime.threads_per_worker: must be a whole number from 1"),
        ({"threads_per_worker": True}, "runtime.threads_per_worker: must be a whole number"),
        ({"warmup_examples": -1}, "runtime.warmup_examples: must be a whole number from 0"),
        ({"threads": 2}, "runtime.threads: unknown key (allowed: threads_per_worker, warmup"),
        ([1], "runtime: must be a mapping"),
    ],
)
def test_a_bad_runtime_names_its_key(runtime: Any, message: str) -> None:
    with pytest.raises(SpecError) as info:
        _spec(runtime)
    assert any(message in problem for problem in info.value.problems), info.value.problems
