"""gunicorn's hooks for catwalk's workers, named in the rendered ``gunicorn.conf.py``.

* :func:`worker_forked` (``post_fork``) and :func:`worker_loaded` (``post_worker_init``): each
  worker sizes its native thread pools to ``Job.threads`` and warms the model up
  (:mod:`.warmup`) before it accepts a connection;
* :func:`recycle_if_over` (``post_request``) replaces a worker whose memory passed
  ``server.max_worker_memory`` once its request is answered;
* :func:`worker_cut` (``worker_int``) logs the requests a worker is cut in when a stop outlasts
  ``server.graceful_timeout`` (the worker answers each the JSON 503);
* :func:`worker_abort` (``worker_abort``): a request that runs longer than ``server.timeout``
  gets nginx's 504; shortly after, gunicorn aborts the stuck worker (SIGABRT). This hook logs
  which request it was; catwalk's worker then raises :class:`~catwalk.errors.ProcessExit`,
  which passes through the model's call, so the worker ends as gunicorn intends and is
  replaced, instead of answering a 500 "predict raised SystemExit".

The timeout and stop hooks learn the requests in flight from catwalk's worker
(:meth:`~.loop_worker.LoopWorker.in_flight`), each with its own correlation id (a batching
worker answers many at once). The metrics hook (``child_exit``) is
:func:`catwalk.server.ops.metrics.worker_exited`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from catwalk.server.logs import LOGGER_NAME
from catwalk.server.ops.request_log import InFlight
from catwalk.server.production import threads
from catwalk.server.worker import warmup


def recycle_if_over(worker: Any, limit: int, written: str) -> None:
    """gunicorn's ``post_request`` hook: past ``limit`` bytes of memory, the worker is replaced.

    The request is answered already; ``alive = False`` is what gunicorn's own max_requests
    does: the worker leaves its loop, exits, and the master starts a fresh one.
    """
    rss = resident_memory()
    if rss > limit and worker.alive:
        logging.getLogger(LOGGER_NAME).warning(
            "worker %d uses %d MiB, more than server.max_worker_memory (%s): replacing it",
            os.getpid(),
            rss >> 20,
            written,
        )
        worker.alive = False


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_memory() -> int:
    """This process's resident set size in bytes (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0


def requests_in_flight(worker: Any) -> list[InFlight]:
    """What ``worker`` is answering now (catwalk's worker knows; another class: nothing)."""
    found = getattr(worker, "in_flight", None)
    return list(found()) if callable(found) else []


def worker_cut(worker: Any, drain: int) -> None:
    """gunicorn's ``worker_int`` hook: the worker is ended at once (SIGQUIT), the stop having
    outlasted ``server.graceful_timeout``; each request it is in is logged as cut (the
    worker answers it a JSON 503 saying why; the ProcessExit that ends it goes through the
    model's call: no 500, no 200 is logged)."""
    cut = [request for request in requests_in_flight(worker) if not request.answered]
    if not cut:
        return
    worker.cut_reason = (
        "the server is shutting down and the request did not finish within "
        f"server.graceful_timeout ({drain} s)"
    )
    # gunicorn reports the SystemExit that ends the request with a traceback: said below.
    logging.getLogger("gunicorn.error").addFilter(
        lambda record: not str(record.msg).startswith("Error handling request")
    )
    for request in cut:
        logging.getLogger(LOGGER_NAME).error(
            "shutdown: request cut unanswered, still running after server.graceful_timeout "
            "(%s s): %s",
            drain,
            request.describe(),
            extra={"correlation_id": request.correlation_id()},
        )


def worker_abort(worker: Any, timeout: int) -> None:
    """gunicorn's ``worker_abort`` hook: the worker exceeded the timeout and is being ended;
    each request in flight (a batching worker's whole batch) is logged."""
    found: list[InFlight | None] = [*requests_in_flight(worker)] or [None]
    for request in found:
        logging.getLogger(LOGGER_NAME).error(
            "worker timeout: a request ran longer than server.timeout (%s s), nginx answered "
            "504; gunicorn ends this worker and starts a new one: %s",
            timeout,
            request.describe() if request is not None else "no request in flight",
            extra={"correlation_id": request.correlation_id()} if request is not None else {},
        )


def worker_forked(worker: Any) -> None:
    """gunicorn's ``post_fork`` hook: the pool variables at the plan, for what loads from now."""
    job = getattr(worker.app, "job", None)
    if job is not None:
        threads.set_pool_variables(job.threads.threads)


def worker_loaded(worker: Any) -> None:
    """gunicorn's ``post_worker_init`` hook: size the native pools, then warm the model up.

    Runs in the worker before it accepts a connection; the heartbeat keeps gunicorn's
    timeout from replacing a worker whose warm-up outlasts it.
    """
    job = getattr(worker.app, "job", None)
    if job is None:
        return
    threads.limit_worker_threads(job.threads.threads)
    tracing = getattr(worker.wsgi, "tracing", None)
    if tracing is not None:  # the SDK and its export thread: in each worker, after the fork
        tracing.start()
    readiness = getattr(worker.wsgi, "readiness", None)
    models = getattr(worker.wsgi, "models", ())  # the model, or each of a repository's
    for model in models:
        with warmup.Heartbeat(worker.notify, limit=warmup.MAX_WARMUP_SECONDS):
            done = warmup.warm_up(model, model.spec.runtime.warmup_examples, readiness)
        if len(models) > 1:
            done = f"{model.spec.name}@{model.spec.version} {done}"
        logging.getLogger(LOGGER_NAME).info(
            "worker %d: %s; %d native thread(s) per pool", os.getpid(), done, job.threads.threads
        )
