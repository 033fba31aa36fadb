"""Native thread pools in production mode: fork safe, and sized so workers x threads fit.

Two problems of models built on LightGBM, XGBoost, scikit-learn, PyTorch (OpenMP, MKL,
OpenBLAS):

* **Fork safety.** GNU OpenMP (libgomp) keeps its pool of threads across ``fork()`` only in
  its bookkeeping: a forked child that enters a parallel region waits for threads that do not
  exist, for ever (GCC bug 60035; LightGBM's FAQ). With ``server.preload`` the gunicorn master
  loads the model and then forks the workers, so any pool started while loading deadlocks
  every worker. The master is therefore started with every pool's variable at 1
  (:data:`POOL_VARIABLES`, :func:`master_environment`): the libraries start no thread there.
  Should loading still leave threads behind (a library that ignores these variables, a model
  starting its own thread), the master loads nothing before forking: each worker loads the
  model itself (:func:`threads_started`, used by :mod:`catwalk.server.worker.wsgi`).
* **Oversubscription.** Each worker's pools default to one thread per CPU: N workers run N x
  CPUs threads on N CPUs (13x slower for LightGBM). Each worker sizes them to
  :attr:`ThreadPlan.threads` (:func:`limit_worker_threads`): the variables (for libraries loaded
  later), threadpoolctl (OpenMP, BLAS already loaded) and ``torch.set_num_threads``.

:func:`plan_threads` picks the number: ``server.threads_per_worker`` (or
``SERVER_THREADS_PER_WORKER``) > model.yml's ``runtime.threads_per_worker`` >
``OMP_NUM_THREADS`` set by whoever started catwalk > the usable CPUs / the workers.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from catwalk.cpus import usable_cpus

#: The variables the common native pools read when they start: OpenMP (libgomp, LLVM/Intel),
#: MKL, OpenBLAS, BLIS, Accelerate, numexpr.
POOL_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


@dataclass(frozen=True)
class ThreadPlan:
    """How many threads each worker's native pools get, and why (for the log)."""

    threads: int = 1
    reason: str = "default"

    def describe(self, workers: int) -> str:
        return f"{workers} workers x {self.threads} threads ({self.reason})"


def plan_threads(
    configured: int | None,
    declared: int | None,
    workers: int,
    *,
    environ: Mapping[str, str] = os.environ,
    cpus: int | None = None,
) -> ThreadPlan:
    """Threads per worker: the deployment's, the model's, ``OMP_NUM_THREADS``, or CPUs/workers."""
    if configured is not None:
        return ThreadPlan(configured, "server.threads_per_worker")
    if declared is not None:
        return ThreadPlan(declared, "model.yml runtime.threads_per_worker")
    given = environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) >= 1:
        return ThreadPlan(int(given), "OMP_NUM_THREADS in the environment")
    usable = cpus if cpus is not None else usable_cpus()
    return ThreadPlan(
        max(1, usable // max(workers, 1)), f"{usable} usable CPUs / {workers} workers"
    )


def master_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The gunicorn master's environment: every native pool at one thread (none started)."""
    env = dict(environ)
    env.update(dict.fromkeys(POOL_VARIABLES, "1"))
    return env


#: Threads that survive a fork by design, named as /proc shows them: jemalloc's background
#: purger (pyarrow's allocator, imported by pandas when pyarrow is installed) registers
#: pthread_atfork handlers and is restarted in the child on demand.
FORK_SAFE_THREADS = frozenset({"jemalloc_bg_thd"})


def thread_count() -> int:
    """Threads of this process that a fork could strand (Linux /proc; elsewhere only Python's
    own threads). Fork-safe helper threads (:data:`FORK_SAFE_THREADS`) are not counted."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        import threading

        return threading.active_count()
    return sum(1 for task in tasks if _thread_name(task) not in FORK_SAFE_THREADS)


def _thread_name(task: str) -> str:
    try:
        with open(f"/proc/self/task/{task}/comm", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:  # the thread ended while we looked
        return ""


def threads_started(before: int) -> str | None:
    """Why forking now is unsafe (threads started since ``before`` was counted), or None."""
    extra = thread_count() - before
    if extra <= 0:
        return None
    return (
        f"loading the model started {extra} thread(s) that forked workers would not have "
        "(a native pool that ignores OMP_NUM_THREADS, or the model's own thread)"
    )


def set_pool_variables(threads: int) -> None:
    """The pool variables at ``threads``: what a library loaded from now on starts with."""
    for name in POOL_VARIABLES:
        os.environ[name] = str(threads)


def limit_worker_threads(threads: int) -> None:
    """Size this worker's native pools (after fork; the master started none)."""
    set_pool_variables(threads)
    from threadpoolctl import threadpool_limits

    # Not a context manager: the limits hold for the worker's life.
    threadpool_limits(limits=threads)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(threads)
    logging.getLogger("catwalk.server").debug(
        "worker %d: native thread pools limited to %d", os.getpid(), threads
    )
