"""Production mode: nginx in front of gunicorn over a unix socket, supervised by this process.

:func:`serve_production` renders both configurations into a private temporary folder, starts
gunicorn (:mod:`catwalk.server.worker.wsgi`), waits until it answers ``GET /status`` on its socket,
then starts nginx on the server port, and watches both:

* SIGTERM, SIGINT (and SIGHUP, SIGQUIT) stop the server: nginx first, gracefully (SIGQUIT:
  stop accepting, finish the requests in flight) for up to ``server.graceful_timeout``; a
  request still running then is cut (gunicorn SIGQUIT: its worker logs it as cut and
  answers its client a JSON 503), then gunicorn stops (SIGTERM, then SIGKILL). The exit code is 0.
* If either child dies on its own, the other is stopped and the exit code is non-zero, so that
  an orchestrator restarts the container.
* Startup problems (nginx missing, port in use, bad certificate, a model that cannot load)
  raise :class:`~catwalk.errors.ServeError` after everything started so far is stopped.

Each child runs in its own session, so a terminal's Ctrl-C reaches only this process, which
then stops them in order; a parent-death signal stops them should this process be killed.
Running as PID 1 (a container's entry point) it also reaps orphaned zombies. nginx's stderr
(its error log and the JSON lines of the errors it answers) is relayed through this process.

As root, nginx's workers run as their own user, ``catwalk-nginx``
(:func:`~catwalk.server.production.preflight.worker_user`): the run folder is ``0710`` with its
group, its files ``0600``, and gunicorn's socket ``0660`` with that group; other local users (even
``nobody``) can neither read ``job.pickle`` nor connect to gunicorn.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import pickle
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from catwalk.config import ServerSettings
from catwalk.errors import CatwalkError, ServeError
from catwalk.server.logs import configure_logging
from catwalk.server.production.children import Child, Signals, spawn
from catwalk.server.production.job import (
    APP_LOAD_ERROR,
    DEFAULT_FACTORY,
    Job,
    specs_of,
)
from catwalk.server.production.preflight import (
    check_nginx_conf,
    check_port,
    find_nginx,
    ipv6_available,
    nginx_args,
    open_files_limit,
    worker_user,
)
from catwalk.server.production.render import (
    GRACEFUL_TIMEOUT,
    MAX_SOCKET_PATH,
    RunLayout,
    Tuning,
    render_gunicorn_conf,
    render_nginx_conf,
)
from catwalk.server.production.threads import ThreadPlan, master_environment, plan_threads
from catwalk.spec import load_spec
from catwalk.tmp import make_temp_dir

# How long gunicorn may take to load the model and answer /status.
STARTUP_TIMEOUT = 300.0
# After server.graceful_timeout, cut requests are answered 503 by their workers: nginx then
# exits within this.
CUT_GRACE = 5.0


def serve_production(
    model_path: Path,
    settings: ServerSettings,
    *,
    app_factory: str = DEFAULT_FACTORY,
    tuning: Tuning | None = None,
) -> int:
    """Serve the model folder with nginx + gunicorn until stopped; return the exit code.

    ``app_factory`` and ``tuning`` are open for bench/ (another app, another worker class).
    """
    configure_logging(settings.log_level, settings.log_format)
    nginx = find_nginx()
    ipv6 = ipv6_available()
    check_port(settings.port, ipv6=ipv6)
    user = worker_user() if os.geteuid() == 0 else None
    secret = secrets.token_hex(16)
    layout = RunLayout(make_temp_dir("catwalk-"), user, secret)
    job = Job(Path(model_path).resolve(), settings, app_factory, secret)
    job = replace(job, threads=thread_plan(job))
    tuning = replace(tuning or Tuning(), open_files=open_files_limit())
    try:
        with Signals() as signals:
            _prepare(layout, job, tuning, ipv6=ipv6)
            check_nginx_conf(nginx, layout)
            server = _Server(
                nginx,
                layout,
                settings,
                signals,
                ipv6=ipv6,
                threads=job.threads,
                model_fields=_model_fields(job),
                nginx_batch_scheduled=tuning.nginx_batch_scheduled,
            )
            try:
                return server.run()
            finally:
                server.stop()
    finally:
        shutil.rmtree(layout.run_dir, ignore_errors=True)


def _model_fields(job: Job) -> dict[str, str]:
    """The model served, as nginx's JSON lines name it (none if model.yml cannot be read)."""
    try:
        spec = load_spec(job.model_path)
    except CatwalkError:  # reported when the app is built
        return {}
    return {"model_name": spec.name, "model_version": spec.version}


def thread_plan(job: Job) -> ThreadPlan:
    """Threads per worker for the job (catwalk.server.production.threads.plan_threads)."""
    try:  # a repository: the most any of its models declares
        found = [s.runtime.threads_per_worker for s in specs_of(job.model_path)]
        declared = max((n for n in found if n is not None), default=None)
    except CatwalkError:  # reported when the app is built
        declared = None
    return plan_threads(job.settings.threads_per_worker, declared, job.settings.workers)


def _prepare(layout: RunLayout, job: Job, tuning: Tuning, *, ipv6: bool = False) -> None:
    if len(str(layout.socket)) > MAX_SOCKET_PATH:
        raise ServeError(f"{layout.socket}: path too long for a unix socket; set TMPDIR shorter")
    layout.nginx_temp.mkdir(mode=0o700)
    if layout.worker_user:
        # nginx's workers (another user) must reach the socket and their temp folders: their
        # group may traverse both folders, not list them; no one else may even enter.
        gid = grp.getgrnam(layout.worker_user.group).gr_gid
        for folder in (layout.run_dir, layout.nginx_temp):
            os.chown(folder, -1, gid)
            folder.chmod(0o710)
    try:
        nginx_conf = render_nginx_conf(job.settings, layout, tuning, ipv6=ipv6)
    except ValueError as exc:
        raise ServeError(f"server.ssl: {exc}") from None
    _write_private(layout.nginx_conf, nginx_conf.encode())
    gunicorn_conf = render_gunicorn_conf(job.settings, layout, tuning)
    _write_private(layout.gunicorn_conf, gunicorn_conf.encode())
    _write_private(layout.job_file, pickle.dumps(job))


def _write_private(path: Path, data: bytes) -> None:
    """Write a new file only this user may read (it may hold the run's secret)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _open_socket_to_nginx(layout: RunLayout) -> None:
    """As root: gunicorn's socket (0600 from its umask) becomes 0660 with nginx's group."""
    if layout.worker_user:
        os.chown(layout.socket, -1, grp.getgrnam(layout.worker_user.group).gr_gid)
        layout.socket.chmod(0o660)


_logger = logging.getLogger("catwalk.production")
WARN = logging.WARNING


def _log(message: str, level: int = logging.INFO) -> None:
    _logger.log(level, message)


class _Server:
    def __init__(
        self,
        nginx: str,
        layout: RunLayout,
        settings: ServerSettings,
        signals: Signals,
        *,
        ipv6: bool = False,
        threads: ThreadPlan | None = None,
        model_fields: dict[str, str] | None = None,
        nginx_batch_scheduled: bool = True,
    ) -> None:
        self.nginx_bin = nginx
        self.nginx_batch_scheduled = nginx_batch_scheduled
        self.model_fields = model_fields or {}
        self.ipv6 = ipv6
        self.layout = layout
        self.settings = settings
        self.signals = signals
        self.children: list[Child] = []
        self.threads = threads

    # ---------------------------------------------------------------- run ----
    def run(self) -> int:
        if self.signals.stopping:
            return self._stopped()
        # Every native pool at one thread in the master: it forks the workers (threads.py).
        gunicorn = self._started(
            spawn(
                "gunicorn",
                [sys.executable, "-m", "catwalk.server.worker.wsgi", str(self.layout.run_dir)],
                env=master_environment(),
            )
        )
        if not self._wait_for(gunicorn, self._gunicorn_ready, STARTUP_TIMEOUT):
            return self._stopped()
        _open_socket_to_nginx(self.layout)
        # Relayed: nginx opens /dev/stderr for its JSON error lines, which works on a pipe
        # (not on every socket a service manager may give us as stderr).
        nginx = self._started(
            spawn(
                "nginx",
                [self.nginx_bin, *nginx_args(self.layout)],
                relay_stderr=True,
                json_lines=self.settings.log_format == "json",
                model_fields=self.model_fields,
                batch_scheduled=self.nginx_batch_scheduled,
            )
        )
        if not self._wait_for(nginx, self._nginx_ready, 30.0):
            return self._stopped()
        _log(
            f"serving {self.settings.scheme}://0.0.0.0:{self.settings.port} "
            f"{'and [::]:' + str(self.settings.port) + ' ' if self.ipv6 else ''}"
            f"(nginx pid {nginx.pid} -> gunicorn pid {gunicorn.pid}, {self._workers()})"
        )
        return self._supervise()

    def _workers(self) -> str:
        """The worker model chosen, and why: workers, threads per worker, preload."""
        workers = self.settings.workers
        text = self.threads.describe(workers) if self.threads else f"{workers} workers"
        try:
            off = self.layout.preload_off_file.read_text(encoding="utf-8").strip()
        except OSError:
            off = ""
        if off:
            return f"{text}, preload off: {off}"
        return f"{text}, preload {str(self.settings.preload).lower()}"

    def _started(self, child: Child) -> Child:
        """``child`` is one of this server's, supervised and stopped with it."""
        self.children.append(child)
        return child

    def _wait_for(self, child: Child, ready: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``ready()``; False when a stop signal came first. Raises ServeError."""
        deadline = time.monotonic() + timeout
        while True:
            if self.signals.stopping:
                return False
            self._reap()
            if not child.alive:
                raise ServeError(self._startup_failure(child))
            if ready():
                return True
            if time.monotonic() > deadline:
                raise ServeError(f"{child.name} did not become ready within {timeout:.0f} s")
            self.signals.wait(0.05)

    def _startup_failure(self, child: Child) -> str:
        if child.name == "gunicorn":
            with contextlib.suppress(OSError):
                reason = self.layout.error_file.read_text(encoding="utf-8").strip()
                if reason:
                    return reason
            if child.status == APP_LOAD_ERROR:
                return "gunicorn could not load the app (see its messages above)"
        return f"{child.name} failed to start (exit code {child.status}; see its messages above)"

    def _gunicorn_ready(self) -> bool:
        """True once a worker answers ``GET /status`` with 200 on the socket."""
        if not self.layout.socket.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(5)
                conn.connect(str(self.layout.socket))
                conn.sendall(b"GET /status HTTP/1.0\r\nHost: localhost\r\n\r\n")
                head = conn.recv(64)
        except OSError:
            return False
        return head.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200"))

    def _nginx_ready(self) -> bool:
        # nginx writes its pid file once it listens on the port.
        try:
            return self.layout.nginx_pid.read_text().strip().isdigit()
        except OSError:
            return False

    def _supervise(self) -> int:
        while not self.signals.stopping:
            self._reap()
            dead = [child for child in self.children if not child.alive]
            if dead:
                child = dead[0]
                others = ", ".join(c.name for c in self.children if c.alive) or "nothing"
                _log(
                    f"{child.name} (pid {child.pid}) exited unexpectedly with code "
                    f"{child.status}; stopping {others}",
                    logging.ERROR,
                )
                return child.status or 1
            self.signals.wait(1.0)
        return self._stopped()

    def _stopped(self) -> int:
        assert self.signals.received is not None
        _log(f"received {signal.Signals(self.signals.received).name}, shutting down")
        return 0

    # --------------------------------------------------------------- stop ----
    def stop(self) -> None:
        """Drain nginx for up to server.graceful_timeout, cut what is left, stop gunicorn."""
        by_name = {child.name: child for child in self.children}
        nginx, gunicorn = by_name.get("nginx"), by_name.get("gunicorn")
        self._announce_stop(nginx)
        drain = self.settings.graceful_timeout
        if nginx:
            nginx.send(signal.SIGQUIT)  # graceful: stop accepting, finish the requests in flight
            if not self._wait_exit(nginx, time.monotonic() + drain) and gunicorn:
                _log(
                    f"requests still in flight after server.graceful_timeout ({drain} s): "
                    "cutting them",
                    WARN,
                )
                # Workers end at once, each logging the request it is cut in and answering
                # its client the JSON 503; nginx, with nothing left in flight, exits.
                gunicorn.send(signal.SIGQUIT)
                self._wait_exit(nginx, time.monotonic() + CUT_GRACE)
            if nginx.alive:
                nginx.send(signal.SIGTERM)
                self._wait_exit(nginx, time.monotonic() + 1.0)
        if gunicorn:
            gunicorn.send(signal.SIGTERM)  # graceful within GRACEFUL_TIMEOUT
            self._wait_exit(gunicorn, time.monotonic() + GRACEFUL_TIMEOUT + 1.0)
        for child in self.children:
            if child.alive:
                _log(
                    f"{child.name} (pid {child.pid}) did not stop in time: killing it",
                    logging.WARNING,
                )
            child.kill_group(signal.SIGKILL)
            self._wait_exit(child, time.monotonic() + 1.0)

    def _announce_stop(self, nginx: Child | None) -> None:
        """/ready answers 503 from now on; then serve on for ``server.shutdown_delay`` s.

        A load balancer polling /ready stops sending new requests during that delay, before
        nginx closes its port and drains.
        """
        with contextlib.suppress(OSError):
            self.layout.stop_file.touch()
        delay = self.settings.shutdown_delay
        if delay > 0 and nginx is not None and nginx.alive and self.signals.stopping:
            _log(f"not ready any more; draining in {delay:g} s (server.shutdown_delay)")
            until = time.monotonic() + delay
            while time.monotonic() < until and all(c.alive for c in self.children):
                self.signals.wait(min(0.2, until - time.monotonic()))
                self._reap()

    def _wait_exit(self, child: Child, until: float) -> bool:
        while child.alive and time.monotonic() < until:
            self.signals.wait(0.05)
            self._reap()
        return not child.alive

    def _reap(self) -> None:
        if os.getpid() == 1:
            # As a container's init, orphans are re-parented to us: reap them too.
            by_pid = {child.pid: child for child in self.children if child.alive}
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                if pid in by_pid:
                    by_pid[pid].exited(status)
            return
        for child in self.children:
            if child.alive:
                try:
                    pid, status = os.waitpid(child.pid, os.WNOHANG)
                except ChildProcessError:
                    pid, status = child.pid, 0
                if pid == child.pid:
                    child.exited(status)
