"""Production mode: nginx in front of gunicorn over a unix socket, supervised by this process.

:func:`serve_production` renders both configurations into a private temporary folder, starts
gunicorn (:mod:`catwalk.server.wsgi`), waits until it answers ``GET /status`` on its socket,
then starts nginx on the server port, and watches both:

* SIGTERM, SIGINT (and SIGHUP, SIGQUIT) stop the server within 10 s: nginx first, gracefully
  (SIGQUIT: finish the requests in flight), then gunicorn (SIGTERM: graceful, then SIGKILL).
  The exit code is 0.
* If either child dies on its own, the other is stopped and the exit code is non-zero, so that
  an orchestrator restarts the container.
* Startup problems (nginx missing, port in use, bad certificate, a model that cannot load)
  raise :class:`~catwalk.errors.ServeError` after everything started so far is stopped.

Each child runs in its own session, so a terminal's Ctrl-C reaches only this process, which
then stops them in order; a parent-death signal stops them should this process be killed.
Running as PID 1 (a container's entry point) it also reaps orphaned zombies.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import grp
import logging
import os
import pickle
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from catwalk.config import ServerSettings
from catwalk.errors import ServeError
from catwalk.server.logs import configure_logging
from catwalk.server.render import (
    GRACEFUL_TIMEOUT,
    MAX_SOCKET_PATH,
    RunLayout,
    Tuning,
    WorkerUser,
    render_gunicorn_conf,
    render_nginx_conf,
)
from catwalk.server.wsgi import APP_LOAD_ERROR, DEFAULT_FACTORY, Job
from catwalk.tmp import make_temp_dir

NGINX_MISSING = (
    "nginx is not installed: run `bash scripts/install-system-deps.sh nginx` "
    "or `apt-get install nginx`"
)
# How long gunicorn may take to load the model and answer /status.
STARTUP_TIMEOUT = 300.0
# Stop budget (seconds): nginx drains first, then gunicorn gets the rest; all within 10 s.
NGINX_DRAIN = 3.5
STOP_BUDGET = 9.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
_PR_SET_PDEATHSIG = 1


def serve_production(model_path: Path, settings: ServerSettings) -> int:
    """Serve the model folder with nginx + gunicorn until stopped; return the exit code."""
    return run_server(model_path, settings)


def run_server(
    model_path: Path,
    settings: ServerSettings,
    *,
    app_factory: str = DEFAULT_FACTORY,
    tuning: Tuning | None = None,
) -> int:
    """:func:`serve_production` with the app factory and tuning open (tests and bench/)."""
    configure_logging(settings.log_level)
    nginx = find_nginx()
    ipv6 = ipv6_available()
    check_port(settings.port, ipv6=ipv6)
    user = worker_user() if os.geteuid() == 0 else None
    layout = RunLayout(make_temp_dir("catwalk-"), worker_user=user)
    try:
        with _Signals() as signals:
            job = Job(Path(model_path).resolve(), settings, app_factory)
            _prepare(layout, job, tuning, ipv6=ipv6)
            check_nginx_conf(nginx, layout)
            server = _Server(nginx, layout, settings, signals, ipv6=ipv6)
            try:
                return server.run()
            finally:
                server.stop()
    finally:
        shutil.rmtree(layout.run_dir, ignore_errors=True)


# ------------------------------------------------------------------ checks ----
def find_nginx() -> str:
    """The nginx binary on PATH, or ServeError saying how to install it."""
    found = shutil.which("nginx")
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        candidate = Path(folder) / "nginx"
        if os.access(candidate, os.X_OK):
            raise ServeError(
                f"nginx is not on PATH (found {candidate}): add {folder} to PATH, e.g. "
                f'`export PATH="$PATH:{folder}"`'
            )
    raise ServeError(NGINX_MISSING)


def ipv6_available() -> bool:
    """True when nginx can also listen on ``[::]``: IPv6 is built in and not disabled here."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # as nginx does
            probe.bind(("::", 0))
    except OSError:
        return False
    return True


def check_port(port: int, *, ipv6: bool = False) -> None:
    """Fail early and clearly when nginx could not listen on the port (on IPv6 too)."""
    probes = [(socket.AF_INET, ("0.0.0.0", port))]
    if ipv6:
        probes.append((socket.AF_INET6, ("::", port)))
    for family, address in probes:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx does
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ServeError(f"port {port} is already in use") from None
                if exc.errno == errno.EACCES:
                    raise ServeError(
                        f"port {port}: permission denied (ports below 1024 need root)"
                    ) from None
                raise ServeError(f"port {port}: cannot listen ({exc.strerror})") from None


def worker_user() -> WorkerUser:
    """The unprivileged account nginx workers use when the server runs as root."""
    for name in ("nobody", "www-data"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        try:
            group = grp.getgrgid(entry.pw_gid).gr_name
        except KeyError:
            group = name
        return WorkerUser(name, group)
    raise ServeError("running as root, but there is no 'nobody' user for nginx's workers")


def check_nginx_conf(nginx: str, layout: RunLayout) -> None:
    """``nginx -t``: catches a bad certificate or key before anything is started."""
    result = subprocess.run(
        [nginx, "-t", "-q", *_nginx_args(layout)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if "test failed" not in line]
        raise ServeError("nginx rejects the configuration:\n" + "\n".join(lines).strip())


def _prepare(layout: RunLayout, job: Job, tuning: Tuning | None, *, ipv6: bool = False) -> None:
    if len(str(layout.socket)) > MAX_SOCKET_PATH:
        raise ServeError(f"{layout.socket}: path too long for a unix socket; set TMPDIR shorter")
    if layout.worker_user:
        # nginx workers (another user) must reach the socket: traverse, not list.
        layout.run_dir.chmod(0o711)
    layout.nginx_temp.mkdir()
    try:
        layout.nginx_conf.write_text(render_nginx_conf(job.settings, layout, tuning, ipv6=ipv6))
    except ValueError as exc:
        raise ServeError(f"server.ssl: {exc}") from None
    layout.gunicorn_conf.write_text(render_gunicorn_conf(job.settings, layout, tuning))
    with layout.job_file.open("wb") as f:
        pickle.dump(job, f)


def _nginx_args(layout: RunLayout) -> list[str]:
    # -e: before reading the config nginx would open its compiled-in /var/log/nginx/error.log.
    return ["-p", str(layout.run_dir), "-c", str(layout.nginx_conf), "-e", "stderr"]


# ---------------------------------------------------------------- signals ----
class _Signals:
    """Stop signals set a flag; every signal (SIGCHLD too) wakes :meth:`wait` at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._saved: dict[int, object] = {}
        self._saved_fd = -1

    def __enter__(self) -> _Signals:
        self._saved_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for sig in (*STOP_SIGNALS, signal.SIGCHLD):
            self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._saved_fd)
        os.close(self._read)
        os.close(self._write)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGCHLD and self.received is None:
            self.received = signum

    @property
    def stopping(self) -> bool:
        return self.received is not None

    def wait(self, timeout: float) -> None:
        with contextlib.suppress(InterruptedError):
            select.select([self._read], [], [], max(timeout, 0))
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 512):
                pass


# --------------------------------------------------------------- children ----
@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    status: int | None = field(default=None)  # exit code (128 + n when killed by signal n)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.status is None

    def send(self, sig: int) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def exited(self, wait_status: int) -> None:
        code = os.waitstatus_to_exitcode(wait_status)
        self.status = 128 - code if code < 0 else code
        self.process.returncode = self.status  # Popen must not wait for it again

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        # Each child leads its own process group: this reaches its workers too, e.g. gunicorn
        # workers orphaned by a killed master.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if catwalk is SIGKILLed, the child gets
    # SIGTERM instead of running on as an orphan.
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(name: str, args: list[str]) -> _Child:
    process = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    return _Child(name, process)


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
        signals: _Signals,
        *,
        ipv6: bool = False,
    ) -> None:
        self.nginx_bin = nginx
        self.ipv6 = ipv6
        self.layout = layout
        self.settings = settings
        self.signals = signals
        self.children: list[_Child] = []

    # ---------------------------------------------------------------- run ----
    def run(self) -> int:
        if self.signals.stopping:
            return self._stopped()
        gunicorn = self._start(
            "gunicorn", [sys.executable, "-m", "catwalk.server.wsgi", str(self.layout.run_dir)]
        )
        if not self._wait_for(gunicorn, self._gunicorn_ready, STARTUP_TIMEOUT):
            return self._stopped()
        nginx = self._start("nginx", [self.nginx_bin, *_nginx_args(self.layout)])
        if not self._wait_for(nginx, self._nginx_ready, 30.0):
            return self._stopped()
        _log(
            f"serving {self.settings.scheme}://0.0.0.0:{self.settings.port} "
            f"{'and [::]:' + str(self.settings.port) + ' ' if self.ipv6 else ''}"
            f"(nginx pid {nginx.pid} -> gunicorn pid {gunicorn.pid}, "
            f"{self.settings.workers} workers, preload {str(self.settings.preload).lower()})"
        )
        return self._supervise()

    def _start(self, name: str, args: list[str]) -> _Child:
        child = _spawn(name, args)
        self.children.append(child)
        return child

    def _wait_for(self, child: _Child, ready: Callable[[], bool], timeout: float) -> bool:
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

    def _startup_failure(self, child: _Child) -> str:
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
        """Stop nginx (drain), then gunicorn; SIGKILL whatever is left at the deadline."""
        by_name = {child.name: child for child in self.children}
        nginx, gunicorn = by_name.get("nginx"), by_name.get("gunicorn")
        self._announce_stop(nginx)
        deadline = time.monotonic() + STOP_BUDGET
        if nginx:
            nginx.send(signal.SIGQUIT)  # graceful: finish the requests in flight
            if not self._wait_exit(nginx, min(time.monotonic() + NGINX_DRAIN, deadline)):
                nginx.send(signal.SIGTERM)
                self._wait_exit(nginx, min(time.monotonic() + 0.5, deadline))
        if gunicorn:
            gunicorn.send(signal.SIGTERM)  # graceful within GRACEFUL_TIMEOUT
            self._wait_exit(gunicorn, min(time.monotonic() + GRACEFUL_TIMEOUT + 0.5, deadline))
        for child in self.children:
            if child.alive:
                _log(
                    f"{child.name} (pid {child.pid}) did not stop in time: killing it",
                    logging.WARNING,
                )
            child.kill_group(signal.SIGKILL)
            self._wait_exit(child, time.monotonic() + 1.0)

    def _announce_stop(self, nginx: _Child | None) -> None:
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

    def _wait_exit(self, child: _Child, until: float) -> bool:
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
