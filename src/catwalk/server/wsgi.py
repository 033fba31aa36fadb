"""gunicorn side of production mode: ``python -m catwalk.server.wsgi RUN_DIR``.

:mod:`catwalk.server.production` starts this module as the gunicorn master. It reads what to
serve from the run folder (``job.pickle``: model path, settings, app factory) and the rendered
``gunicorn.conf.py``, builds the Flask app and runs gunicorn on the folder's unix socket.

With ``preload`` the model is loaded here, once, before gunicorn forks its workers (they share
its memory pages); otherwise each worker loads its own copy. Either way a model that cannot be
loaded ends gunicorn at once with exit code 4 and a one-paragraph message in
``startup-error.txt`` (no traceback soup, no endless worker restarts).

Native thread pools (:mod:`catwalk.server.threads`): the supervisor starts this master with
every pool at one thread, so loading the model here starts none (a pool started before a fork
deadlocks the workers). Should loading leave threads behind anyway, this process starts
again (``exec``) with preload off, says why in ``preload-off.txt`` and the log, and each
worker loads the model itself. Each worker, once forked (``post_fork``: :func:`worker_forked`)
and once its app is loaded (``post_worker_init``: :func:`worker_loaded`), sizes its pools to
``Job.threads`` and warms the model up (:mod:`catwalk.server.warmup`) before it accepts.

nginx sends its id of every request in ``X-Request-Id`` (it always sets the header, so a
client cannot choose it) next to this run's secret (``X-Catwalk-Proxy``, in ``job.pickle`` and
``nginx.conf``, both readable by the server's user only); :class:`TrustRequestId` hands the id
to the app only beside that secret, so a local process talking to the socket directly cannot
forge it. The app logs it next to the correlation id.

Worker life cycle hooks (set in ``gunicorn.conf.py``): :func:`recycle_if_over` replaces a
worker whose memory passed ``server.max_worker_memory`` once its request is answered, and
:func:`worker_cut` logs the requests a worker is cut in when a stop outlasts
``server.graceful_timeout`` (the worker answers each the JSON 503).

A request that runs longer than ``server.timeout`` gets nginx's 504; shortly after, gunicorn
aborts the stuck worker (SIGABRT, whose handler raises SystemExit in the worker).
:func:`worker_abort` (gunicorn's hook, set in ``gunicorn.conf.py``) logs which request it was
and lets that SystemExit through the model's call, so the worker ends as gunicorn intends
and is replaced, instead of answering a 500 "predict raised SystemExit". Both hooks learn
the requests in flight from catwalk's worker (:meth:`LoopWorker.in_flight`), each with its
own correlation id (a batching worker answers many at once).
"""

from __future__ import annotations

import gc
import hmac
import importlib
import logging
import os
import pickle
import runpy
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.errors import AppImportError
from gunicorn.glogging import Logger as GunicornLogger

from catwalk.config import ServerSettings
from catwalk.errors import CatwalkError, ConfigError
from catwalk.model import LoadedModel, let_system_exit_through, load_model
from catwalk.repository.discover import discover, is_repository
from catwalk.repository.load import load_repository
from catwalk.server import readiness, threads, warmup
from catwalk.server.logs import LOGGER_NAME, REQUEST_ID_KEY, InFlight, configure_logging
from catwalk.server.render import RunLayout, Tuning
from catwalk.server.threads import ThreadPlan
from catwalk.spec import ModelSpec, load_spec

DEFAULT_FACTORY = "catwalk.server.app:create_app"
# A model repository's (catwalk.repository): "module:function(loaded, settings) -> WSGI app".
REPOSITORY_FACTORY = "catwalk.server.repository_app:create_repository_app"
# Idle kept-alive connections each nginx worker holds to gunicorn for a batching model.
BATCHING_KEEPALIVE = 32
# prometheus-client's multiprocess folder (catwalk.server.metrics.MULTIPROC_ENV; not imported
# from there, as that would import prometheus-client before the variable is set).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# gunicorn's own code for "the application could not be loaded" (Arbiter.APP_LOAD_ERROR).
APP_LOAD_ERROR = 4


@dataclass(frozen=True)
class Job:
    """What one production server serves; pickled into the run folder by the supervisor."""

    model_path: Path
    settings: ServerSettings
    app_factory: str = DEFAULT_FACTORY  # "module:function(model, settings) -> WSGI app"
    proxy_secret: str = ""  # what nginx sends in X-Catwalk-Proxy (RunLayout.proxy_secret)
    threads: ThreadPlan = field(default_factory=ThreadPlan)  # each worker's native pools


class JsonLogger(GunicornLogger):  # type: ignore[misc]
    """gunicorn's logger with ``logging.format: json`` (set as ``logger_class``)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        from catwalk.server.jsonlog import JsonFormatter

        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())


class AppLoadError(Exception):
    """The app could not be built; the message is meant for the operator as is."""


class TrustRequestId:
    """WSGI middleware: nginx's ``X-Request-Id`` becomes the request's id for the app, when it
    comes with this run's secret (``X-Catwalk-Proxy``), i.e. from nginx."""

    def __init__(
        self, app: Any, secret: str, model: LoadedModel | None = None, models: Any = ()
    ) -> None:
        self.app = app
        self.secret = secret.encode("latin-1")
        self.model = model  # what the worker warms up
        self.models: list[LoadedModel] = list(models) or ([model] if model is not None else [])

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        sent = environ.pop("HTTP_X_CATWALK_PROXY", "")  # the app and the model never see it
        if self.secret and hmac.compare_digest(sent.encode("latin-1", "replace"), self.secret):
            environ[REQUEST_ID_KEY] = environ.get("HTTP_X_REQUEST_ID")
        return self.app(environ, start_response)


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
    worker answers it a JSON 503 saying why), and the SystemExit that ends it goes through
    the model's call (no 500, no 200 is logged)."""
    cut = [request for request in requests_in_flight(worker) if not request.answered]
    if not cut:
        return
    let_system_exit_through()
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
    let_system_exit_through()
    found: list[InFlight | None] = [*requests_in_flight(worker)] or [None]
    for request in found:
        logging.getLogger(LOGGER_NAME).error(
            "worker timeout: a request ran longer than server.timeout (%s s), nginx answered "
            "504; gunicorn ends this worker and starts a new one: %s",
            timeout,
            request.describe() if request is not None else "no request in flight",
            extra={"correlation_id": request.correlation_id()} if request is not None else {},
        )


def build_app(job: Job) -> Any:
    """Load the model and build the WSGI app, or raise AppLoadError with a clear message."""
    try:
        if is_repository(job.model_path):
            loaded = load_repository(job.model_path, job.settings.models, _config_name(job))
            app = _factory(REPOSITORY_FACTORY)(loaded, job.settings)  # type: ignore[arg-type]
            models = loaded.models.values()
            return TrustRequestId(app, job.proxy_secret, models=models)
        factory = _factory(job.app_factory)
        model = load_model(load_spec(job.model_path))
        return TrustRequestId(factory(model, job.settings), job.proxy_secret, model)
    except ConfigError as exc:  # e.g. a tokens file that changed since the settings were read
        raise AppLoadError(str(exc)) from exc
    except CatwalkError as exc:
        details = getattr(exc, "details", "")
        message = f"cannot load the model: {exc}"
        raise AppLoadError(f"{message}\n{details}".rstrip()) from exc
    except Exception as exc:
        raise AppLoadError(
            f"cannot build the app: {type(exc).__name__}: {exc}\n{traceback.format_exc()}".rstrip()
        ) from exc


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
    for model in getattr(worker.wsgi, "models", ()):  # each model of a repository
        with warmup.Heartbeat(worker.notify, limit=warmup.MAX_WARMUP_SECONDS):
            done = warmup.warm_up(model, model.spec.runtime.warmup_examples)
        logging.getLogger(LOGGER_NAME).info(
            "worker %d: %s; %d native thread(s) per pool", os.getpid(), done, job.threads.threads
        )


def _config_name(job: Job) -> str:
    """What a problem of ``models:`` names: the application.yml it came from."""
    path = job.settings.config_path
    return str(path) if path is not None else "application.yml"


def specs_of(path: Path) -> list[ModelSpec]:
    """The model.yml of each model ``path`` serves (one folder, or a repository's)."""
    return [entry.spec for entry in discover(path).entries]


def _factory(spec: str) -> Callable[[LoadedModel, ServerSettings], Any]:
    module_name, _, attr = spec.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    if not callable(factory):
        raise TypeError(f"{spec} is not callable")
    return factory  # type: ignore[no-any-return]


class CatwalkApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn application whose config comes from the rendered ``gunicorn.conf.py``."""

    def __init__(self, layout: RunLayout, job: Job, app: Any = None) -> None:
        self.layout = layout
        self.job = job
        self.app = app
        super().__init__()

    def load_config(self) -> None:
        values = runpy.run_path(str(self.layout.gunicorn_conf))
        for name, value in values.items():
            if name in self.cfg.settings:  # settings this gunicorn does not know are skipped
                self.cfg.set(name, value)
        if not self.job.settings.preload:  # turned off here (see main)
            self.cfg.set("preload_app", False)

    def load(self) -> Any:
        if self.app is not None:
            return self.app
        try:  # per-worker loading (preload: false)
            return build_app(self.job)
        except AppLoadError as exc:
            _report(self.layout, str(exc))
            # gunicorn prints it and halts the whole server instead of re-spawning the worker.
            raise AppImportError(str(exc)) from None


def tuning_for(job: Job) -> Tuning:
    """The worker model for the job's model (docs/production.md, "The worker model").

    Every model gets catwalk's event-loop worker. A batching model's requests must meet in
    its worker, so nginx keeps connections open to each (keep-alive); an unbatched model's
    take a new connection each, accepted by whichever worker is free. A repository with one
    batching model is tuned for it.
    """
    try:
        specs = specs_of(job.model_path)
    except CatwalkError:  # reported when the app is built
        return Tuning()
    if all(job.settings.batching.apply(spec.batching) is None for spec in specs):
        return Tuning()
    return Tuning(upstream_keepalive=BATCHING_KEEPALIVE)


def _load_in_workers(layout: RunLayout, reason: str) -> None:
    """Start this master again with preload off: forking it now would break those threads."""
    layout.preload_off_file.write_text(reason + "\n", encoding="utf-8")
    logging.getLogger(LOGGER_NAME).warning(
        "preload off: %s; each worker loads the model itself (no memory shared)", reason
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os.execv(
        sys.executable,
        [sys.executable, "-m", "catwalk.server.wsgi", str(layout.run_dir), LOAD_IN_WORKERS],
    )


def _report(layout: RunLayout, message: str) -> None:
    try:
        layout.error_file.write_text(message + "\n", encoding="utf-8")
    except OSError:
        print(message, file=sys.stderr)


LOAD_IN_WORKERS = "--load-in-workers"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2) or args[1:] not in ([], [LOAD_IN_WORKERS]):
        print(f"usage: python -m catwalk.server.wsgi RUN_DIR [{LOAD_IN_WORKERS}]", file=sys.stderr)
        return 2
    layout = RunLayout(Path(args[0]))
    with layout.job_file.open("rb") as f:
        job: Job = pickle.load(f)
    if LOAD_IN_WORKERS in args:
        job = replace(job, settings=replace(job.settings, preload=False))
    # The app logs one line per request (correlation id, status, latency) on catwalk's logger.
    configure_logging(job.settings.log_level, job.settings.log_format)
    # Before anything imports prometheus-client: it picks its multiprocess mode at import.
    layout.metrics_dir.mkdir(mode=0o700, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(layout.metrics_dir)
    readiness.state.stop_file = str(layout.stop_file)
    app = None
    if job.settings.preload:
        before = threads.thread_count()
        try:
            app = build_app(job)
        except AppLoadError as exc:
            _report(layout, str(exc))
            return APP_LOAD_ERROR
        unsafe = threads.threads_started(before)
        if unsafe is not None:
            _load_in_workers(layout, unsafe)  # does not return
        # Objects alive now are never collected: the GC then leaves their pages alone, so the
        # forked workers keep sharing them with this process instead of copying them.
        gc.freeze()
    CatwalkApplication(layout, job, app).run()
    return 0


if __name__ == "__main__":
    # Run as the importable module, not as __main__: gunicorn.conf.py's hooks import
    # catwalk.server.wsgi, and must find the same state (the cut in progress) as main's.
    from catwalk.server import wsgi

    sys.exit(wsgi.main())
