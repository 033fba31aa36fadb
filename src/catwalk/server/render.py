"""Pure rendering of production mode's configuration: ``nginx.conf`` and ``gunicorn.conf.py``.

Nothing here touches the file system beyond reading the templates, or starts a process: the
text depends only on the :class:`~catwalk.config.ServerSettings` and a :class:`RunLayout` (the
private run folder and who runs the server), so it is unit-tested without nginx or gunicorn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from catwalk.config import ServerSettings
from catwalk.server import messages
from catwalk.templates import environment

# nginx error-log level for each catwalk log level (nginx's "debug" needs a debug build).
NGINX_LEVELS = {"DEBUG": "info", "INFO": "warn", "WARNING": "warn", "ERROR": "error"}
# Seconds gunicorn workers get to finish their requests on SIGTERM; the whole stop must fit in
# 10 s, nginx's drain included (see production.STOP_BUDGET).
GRACEFUL_TIMEOUT = 4
# gunicorn's worker timeout is server.timeout plus this: nginx answers 504 at server.timeout,
# then gunicorn aborts the worker still stuck in the request (its check runs about once a
# second, so without a margin it could kill the worker first and nginx would answer 502).
WORKER_TIMEOUT_MARGIN = 2
# Longest unix socket path (sun_path is 108 bytes on Linux, NUL included).
MAX_SOCKET_PATH = 107

_ENV = environment("catwalk.server", pyrepr=repr)


@dataclass(frozen=True)
class WorkerUser:
    """The unprivileged user nginx workers switch to when the server runs as root."""

    user: str = "nobody"
    group: str = "nogroup"


@dataclass(frozen=True)
class Tuning:
    """Knobs chosen with the benchmark (bench/), not part of application.yml."""

    # gunicorn "sync" workers: one request at a time per process, no keep-alive to nginx; the
    # cheapest per request for CPU-bound models (bench/RESULTS.md).
    worker_class: str = "sync"
    threads: int = 1
    # nginx -> gunicorn keep-alive connections per nginx worker (0: a new connection per
    # request; sync workers close every connection anyway).
    upstream_keepalive: int = 0
    nginx_workers: str = "auto"
    worker_connections: int = 1024
    body_buffer_size: str = "256k"


@dataclass(frozen=True)
class RunLayout:
    """Where one server run keeps its files, and whether it runs as root."""

    run_dir: Path
    worker_user: WorkerUser | None = None  # set when started as root

    @property
    def socket(self) -> Path:
        return self.run_dir / "gunicorn.sock"

    @property
    def nginx_conf(self) -> Path:
        return self.run_dir / "nginx.conf"

    @property
    def nginx_pid(self) -> Path:
        return self.run_dir / "nginx.pid"

    @property
    def nginx_temp(self) -> Path:
        return self.run_dir / "nginx"

    @property
    def gunicorn_conf(self) -> Path:
        return self.run_dir / "gunicorn.conf.py"

    @property
    def gunicorn_pid(self) -> Path:
        return self.run_dir / "gunicorn.pid"

    @property
    def job_file(self) -> Path:
        """What the gunicorn entry point serves (model path, settings, app factory)."""
        return self.run_dir / "job.pickle"

    @property
    def stop_file(self) -> Path:
        """Created by the supervisor when a stop begins: ``GET /ready`` answers 503 from then."""
        return self.run_dir / "stopping"

    @property
    def metrics_dir(self) -> Path:
        """prometheus-client's multiprocess files, one set per gunicorn worker."""
        return self.run_dir / "metrics"

    @property
    def error_file(self) -> Path:
        """Where the gunicorn side writes why the app could not be loaded."""
        return self.run_dir / "startup-error.txt"


def render_nginx_conf(
    settings: ServerSettings, layout: RunLayout, tuning: Tuning | None = None, *, ipv6: bool = False
) -> str:
    """The text of ``nginx.conf`` for this server; ``ipv6``: listen on ``[::]`` too."""
    tuning = tuning or Tuning()
    ssl = settings.ssl
    if ssl.enabled and (ssl.cert is None or ssl.key is None):
        raise ValueError("ssl is enabled but cert or key is missing")
    user = layout.worker_user
    return _ENV.get_template("nginx.conf.j2").render(
        run_dir=layout.run_dir,
        socket=layout.socket,
        worker_processes=tuning.nginx_workers,
        worker_connections=tuning.worker_connections,
        error_level=NGINX_LEVELS.get(settings.log_level, "warn"),
        user=user.user if user else None,
        group=user.group if user else None,
        port=settings.port,
        keepalive=settings.keepalive,
        max_body_size=settings.max_body_size,
        body_buffer_size=tuning.body_buffer_size,
        timeout=settings.timeout,
        upstream_keepalive=tuning.upstream_keepalive,
        ssl=ssl.enabled,
        ssl_cert=ssl.cert,
        ssl_key=ssl.key,
        ipv6=ipv6,
        too_large_message=messages.too_large(settings.max_body_size),
    )


def render_gunicorn_conf(
    settings: ServerSettings, layout: RunLayout, tuning: Tuning | None = None
) -> str:
    """The text of ``gunicorn.conf.py`` (a Python file of plain assignments) for this server."""
    tuning = tuning or Tuning()
    return _ENV.get_template("gunicorn.conf.py.j2").render(
        run_dir=str(layout.run_dir),
        bind=f"unix:{layout.socket}",
        workers=settings.workers,
        worker_class=tuning.worker_class,
        threads=tuning.threads,
        timeout=settings.timeout + WORKER_TIMEOUT_MARGIN,
        server_timeout=settings.timeout,
        timeout_margin=WORKER_TIMEOUT_MARGIN,
        graceful_timeout=min(GRACEFUL_TIMEOUT, settings.timeout),
        keepalive=max(settings.keepalive, 1),
        preload=settings.preload,
        loglevel=settings.log_level.lower(),
        pidfile=str(layout.gunicorn_pid),
        # As root, nginx workers run as another user and must be able to connect to the
        # socket (it sits in a 0711 folder with a random name); otherwise owner only.
        umask=0o000 if layout.worker_user else 0o077,
        proc_name=f"catwalk:{settings.port}",
    )
