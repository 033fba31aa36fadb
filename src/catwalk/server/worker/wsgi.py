"""gunicorn side of production mode: ``python -m catwalk.server.worker.wsgi RUN_DIR``.

:mod:`catwalk.server.production.supervisor` starts this module as the gunicorn master. It reads
what to serve from the run folder (``job.pickle``: model path, settings, app factory,
:mod:`catwalk.server.production.job`) and the rendered ``gunicorn.conf.py``, builds the app by
its factory's name (catwalk's own: :func:`catwalk.server.app.create_app`) and runs gunicorn on
the folder's unix socket, with catwalk's worker class (:mod:`.loop_worker`) and hooks
(:mod:`.hooks`).

With ``preload`` the model is loaded here, once, before gunicorn forks its workers (they share
its memory pages); otherwise each worker loads its own copy. Either way a model that cannot be
loaded ends gunicorn at once with exit code 4 and a one-paragraph message in
``startup-error.txt`` (no traceback soup, no endless worker restarts).

Native thread pools (:mod:`catwalk.server.production.threads`): the supervisor starts this
master with every pool at one thread, so loading the model here starts none (a pool started
before a fork deadlocks the workers). Should loading leave threads behind anyway, this process
starts again (``exec``) with preload off, says why in ``preload-off.txt`` and the log, and each
worker loads the model itself.

nginx sends its id of every request in ``X-Request-Id`` (it always sets the header, so a
client cannot choose it) next to this run's secret (``X-Catwalk-Proxy``, in ``job.pickle`` and
``nginx.conf``, both readable by the server's user only); :class:`ServedApp` hands the id to
the app only beside that secret, so a local process talking to the socket directly cannot
forge it. The app logs it next to the correlation id.
"""

from __future__ import annotations

import asyncio
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
from dataclasses import replace
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.errors import AppImportError
from gunicorn.glogging import Logger as GunicornLogger

from catwalk.config import ServerSettings
from catwalk.errors import CatwalkError, ConfigError
from catwalk.model import LoadedModel, load_model
from catwalk.repository.discover import is_repository
from catwalk.repository.load import load_repository
from catwalk.server.environ import REQUEST_ID_KEY
from catwalk.server.logs import LOGGER_NAME, configure_logging, json_formatter, name_the_model
from catwalk.server.ops.readiness import Readiness
from catwalk.server.production import threads
from catwalk.server.production.job import APP_LOAD_ERROR, REPOSITORY_FACTORY, Job
from catwalk.server.production.render import RunLayout
from catwalk.spec import load_spec

# prometheus-client's multiprocess folder (catwalk.server.ops.metrics.MULTIPROC_ENV; not
# imported from there, as that would import prometheus-client before the variable is set).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LOAD_IN_WORKERS = "--load-in-workers"


class JsonLogger(GunicornLogger):  # type: ignore[misc]
    """gunicorn's logger with ``logging.format: json`` (set as ``logger_class``): its lines
    take catwalk's own JSON formatter, so they name the model too."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        formatter = json_formatter()
        for handler in self.error_log.handlers:
            handler.setFormatter(formatter)


class AppLoadError(Exception):
    """The app could not be built; the message is meant for the operator as is."""


class ServedApp:
    """The app as gunicorn serves it: WSGI middleware that hands nginx's ``X-Request-Id`` to
    the app as the request's id when it comes with this run's secret (``X-Catwalk-Proxy``),
    i.e. from nginx; and what the worker needs of the app beyond WSGI, when the app offers it
    (catwalk's :class:`~catwalk.server.app.ModelApp` does; another factory's app may not)."""

    def __init__(
        self, app: Any, secret: str, model: LoadedModel | None = None, models: Any = ()
    ) -> None:
        self.app = app
        self.secret = secret.encode("latin-1")
        self.model = model
        # What the worker warms up: the model, or each model of a repository.
        self.models: list[LoadedModel] = list(models) or ([model] if model is not None else [])
        self.readiness: Readiness | None = getattr(app, "readiness", None)
        self.tracing: Any = getattr(app, "tracing", None)  # catwalk.tracing, when on
        self._attach_loop: Callable[..., bool] | None = getattr(app, "attach_loop", None)

    def attach_loop(self, loop: asyncio.AbstractEventLoop, reading: Callable[[], int]) -> bool:
        """Run the app's batching collector on the worker's loop; False: the app answers one
        request at a time (no collector)."""
        return self._attach_loop is not None and bool(self._attach_loop(loop, reading))

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        sent = environ.pop("HTTP_X_CATWALK_PROXY", "")  # the app and the model never see it
        if self.secret and hmac.compare_digest(sent.encode("latin-1", "replace"), self.secret):
            environ[REQUEST_ID_KEY] = environ.get("HTTP_X_REQUEST_ID")
        return self.app(environ, start_response)


def build_app(job: Job, layout: RunLayout | None = None) -> ServedApp:
    """Load the model and build the WSGI app, or raise AppLoadError with a clear message.

    ``layout``: the run folder, whose ``stopping`` file the app's ``/ready`` looks for.
    """
    try:
        if is_repository(job.model_path):
            return _build_repository_app(job, layout)
        factory = _factory(job.app_factory)
        model = load_model(load_spec(job.model_path))
        served = ServedApp(factory(model, job.settings), job.proxy_secret, model)
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
    if served.readiness is not None and layout is not None:
        served.readiness.stop_file = str(layout.stop_file)
    name_the_model(model.spec.name, model.spec.version)
    return served


def _build_repository_app(job: Job, layout: RunLayout | None) -> ServedApp:
    """build_app for a model repository: every model loaded, or the one that fails named."""
    path = job.settings.config_path
    source = str(path) if path is not None else "application.yml"
    loaded = load_repository(job.model_path, job.settings.models, source)
    app = _factory(REPOSITORY_FACTORY)(loaded, job.settings)  # type: ignore[arg-type]
    served = ServedApp(app, job.proxy_secret, models=loaded.models.values())
    if served.readiness is not None and layout is not None:
        served.readiness.stop_file = str(layout.stop_file)
    return served


def _factory(spec: str) -> Callable[[LoadedModel, ServerSettings], Any]:
    module_name, _, attr = spec.partition(":")
    factory = getattr(importlib.import_module(module_name), attr)
    if not callable(factory):
        raise TypeError(f"{spec} is not callable")
    return factory  # type: ignore[no-any-return]


class CatwalkApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn application whose config comes from the rendered ``gunicorn.conf.py``."""

    def __init__(self, layout: RunLayout, job: Job, app: ServedApp | None = None) -> None:
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

    def load(self) -> ServedApp:
        if self.app is not None:
            return self.app
        try:  # per-worker loading (preload: false)
            return build_app(self.job, self.layout)
        except AppLoadError as exc:
            _report(self.layout, str(exc))
            # gunicorn prints it and halts the whole server instead of re-spawning the worker.
            raise AppImportError(str(exc)) from None


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
        [sys.executable, "-m", "catwalk.server.worker.wsgi", str(layout.run_dir), LOAD_IN_WORKERS],
    )


def _report(layout: RunLayout, message: str) -> None:
    try:
        layout.error_file.write_text(message + "\n", encoding="utf-8")
    except OSError:
        print(message, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2) or args[1:] not in ([], [LOAD_IN_WORKERS]):
        print(
            f"usage: python -m catwalk.server.worker.wsgi RUN_DIR [{LOAD_IN_WORKERS}]",
            file=sys.stderr,
        )
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
    if job.settings.metrics:
        from catwalk.server.ops.metrics import keep_process_id

        keep_process_id()
    app = None
    if job.settings.preload:
        before = threads.thread_count()
        try:
            app = build_app(job, layout)
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
    sys.exit(main())
