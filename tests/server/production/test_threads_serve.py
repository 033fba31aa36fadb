"""Native thread pools in production (issue 17): none in the preloading master, each worker's
sized to the plan, and a model that starts threads anyway is loaded in each worker."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from served import MODELS, Server, child_env


def _pools(server: Server) -> dict[str, object]:
    answer = server.post("/predict", json={"input": {}})
    assert answer.status_code == 200, answer.text
    output: dict[str, object] = answer.json()["output"]
    return output


def _log(server: Server) -> str:
    """The server's output once the supervisor has said what it chose (it polls for nginx)."""
    deadline = time.monotonic() + 15
    while "serving http" not in server.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    return server.output()


def _config(tmp_path: Path, text: str) -> Path:
    config = tmp_path / "application.yml"
    config.write_text(text, encoding="utf-8")
    return config


def test_each_workers_pools_follow_threads_per_worker(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    config = _config(tmp_path, "server:\n  workers: 2\n  threads_per_worker: 3\n")
    server = serve(MODELS / "pool_sizes", config=config, env=child_env())
    output = _pools(server)
    pools = output["pools"]
    assert isinstance(pools, list) and {p["api"] for p in pools} >= {"blas", "openmp"}, pools
    assert all(p["threads"] == 3 for p in pools), pools
    assert output["omp_num_threads"] == "3"
    assert "2 workers x 3 threads (server.threads_per_worker), preload true" in _log(server)


def test_the_environment_overrides_application_yml(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    config = _config(tmp_path, "server:\n  workers: 1\n  threads_per_worker: 3\n")
    env = child_env(SERVER_THREADS_PER_WORKER="2")
    server = serve(MODELS / "pool_sizes", config=config, env=env)
    assert all(p["threads"] == 2 for p in _pools(server)["pools"])  # type: ignore[union-attr]


def test_by_default_workers_times_threads_fit_the_cpus(serve: Callable[..., Server]) -> None:
    from catwalk.cpus import usable_cpus

    env = child_env()
    env.pop("OMP_NUM_THREADS", None)
    server = serve(MODELS / "pool_sizes", env=env)  # workers: the usable CPUs
    expected = 1  # usable CPUs // workers, workers being the usable CPUs
    assert all(p["threads"] == expected for p in _pools(server)["pools"])  # type: ignore[union-attr]
    assert f"usable CPUs / {usable_cpus()} workers)" in _log(server)


def test_a_model_that_starts_threads_is_loaded_in_each_worker(
    serve: Callable[..., Server],
) -> None:
    server = serve(MODELS / "starts_thread")
    for _ in range(4):
        answer = server.post("/predict", json={"input": {}})
        assert answer.status_code == 200 and answer.json()["output"] == {"alive": True}
    log = _log(server)
    assert "preload off: loading the model started 1 thread(s)" in log, log
