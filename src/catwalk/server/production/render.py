"""Pure rendering of production mode's configuration: ``nginx.conf`` and ``gunicorn.conf.py``.

Nothing here touches the file system beyond reading the templates, or starts a process: the
text depends only on the :class:`~catwalk.config.ServerSettings` and a :class:`RunLayout` (the
private run folder and who runs the server), so it is unit-tested without nginx or gunicorn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from catwalk.config import ServerSettings
from catwalk.server import messages
from catwalk.templates import environment

# nginx error-log level for each catwalk log level (nginx's "debug" needs a debug build).
NGINX_LEVELS = {"DEBUG": "info", "INFO": "warn", "WARNING": "warn", "ERROR": "error"}
# Seconds gunicorn workers get to exit once told to stop. By then nginx has drained the
# requests in flight (server.graceful_timeout, see production.py), so little is left to do.
GRACEFUL_TIMEOUT = 4
# gunicorn's worker timeout is server.timeout plus this: nginx answers 504 at server.timeout,
# then gunicorn aborts the worker still stuck in the request (its check runs about once a
# second, so without a margin it could kill the worker first and nginx would answer 502).
WORKER_TIMEOUT_MARGIN = 2
# Seconds nginx keeps an idle keep-alive connection to gunicorn open (when it keeps any).
UPSTREAM_IDLE = 60
# Longest unix socket path (sun_path is 108 bytes on Linux, NUL included).
MAX_SOCKET_PATH = 107
# nginx's buffer for the request line and for each header line: below gunicorn's limits (8190
# bytes each, with room for the space nginx may add after a colon), so nginx refuses first.
HEADER_BUFFER = "7k"
# nginx's worker_shutdown_timeout is server.graceful_timeout plus this: catwalk itself cuts
# the drain at graceful_timeout (see production.py); this only bounds a stuck nginx.
SHUTDOWN_MARGIN = 10
# Upper bound of nginx's worker_connections: each slot costs ~450 bytes of memory up front.
MAX_WORKER_CONNECTIONS = 16384

_ENV = environment("catwalk.server.production", pyrepr=repr)


@dataclass(frozen=True)
class WorkerUser:
    """The unprivileged user nginx workers switch to when the server runs as root."""

    user: str = "catwalk-nginx"
    group: str = "catwalk-nginx"


@dataclass(frozen=True)
class Tuning:
    """Knobs chosen with the benchmark (bench/), not part of application.yml."""

    # catwalk's event-loop worker (catwalk.server.worker.loop_worker): one request at a time per
    # process, one connection at a time unless the model batches (its requests meet in its
    # collector); 2.1-2.8x gunicorn's "sync" worker on the same stack (bench/RESULTS.md).
    worker_class: str = "catwalk.server.worker.loop_worker.LoopWorker"
    # Idle nginx -> gunicorn keep-alive connections each nginx worker keeps (0: a new
    # connection per request). A batching model's requests need them to meet in a worker;
    # an unbatched model's worker keeps one alive only while no other connection waits for a
    # worker (catwalk.server.worker.loop_worker), so that no request waits on the kept
    # connection of a busy worker.
    upstream_keepalive: int = 32
    nginx_workers: str = "auto"
    # nginx scheduled SCHED_BATCH: woken by an answer, it no longer preempts the worker that
    # wrote it (catwalk.server.production.children); the seed's stack had no such thing.
    nginx_batch_scheduled: bool = True
    # Open files per nginx worker (worker_rlimit_nofile); production.py sizes it from this
    # machine's limit (RLIMIT_NOFILE); worker_connections follows from it.
    open_files: int = 4096
    body_buffer_size: str = "256k"


@dataclass(frozen=True)
class NginxError:
    """One answer nginx gives itself, as the JSON envelope, to the ``statuses`` it produces."""

    answer: int
    message: str
    statuses: tuple[int, ...]
    allow: str = ""

    @property
    def name(self) -> int:
        return self.statuses[0]


def nginx_errors(settings: ServerSettings) -> list[NginxError]:
    """Every status nginx can produce itself, with the message its JSON answer carries.

    494 (headers too large) and 495-497 (TLS: bad client certificate, plain HTTP to the HTTPS
    port) are answered as 400, as nginx itself does. nginx fills in ``$catwalk_method`` (the
    client's method: ``$request_method`` is GET in an error page).
    """
    return [
        NginxError(400, "bad request: the request line or a header is malformed", (400,)),
        NginxError(
            400,
            f"bad request: the request headers are too large (each line at most {HEADER_BUFFER})",
            (494,),
        ),
        NginxError(400, "this port speaks HTTPS: use https://", (495, 496, 497)),
        # Only for the internal error URIs below, asked for from outside.
        NginxError(404, "no such endpoint (this path is internal to the server)", (404,)),
        NginxError(405, "method not allowed: $catwalk_method", (405,), "GET, HEAD, POST"),
        NginxError(
            408,
            f"the request did not arrive within {settings.client_timeout} s "
            "(server.client_timeout)",
            (408,),
        ),
        NginxError(411, "length required: send a Content-Length header", (411,)),
        NginxError(413, messages.too_large(settings.max_body_size), (413,)),
        NginxError(414, f"the request line is too long (at most {HEADER_BUFFER})", (414,)),
        NginxError(
            429,
            "too many connections from this client "
            f"(server.max_connections_per_client: {settings.max_connections_per_client})",
            (429,),
        ),
        NginxError(500, "internal server error (nginx)", (500,)),
        NginxError(501, "not implemented: unknown method or transfer coding", (501,)),
        NginxError(502, "the model server is not available", (502, 503)),
        NginxError(
            504, f"the model did not answer within {settings.timeout} s (server.timeout)", (504,)
        ),
        NginxError(505, "HTTP version not supported", (505,)),
    ]


# What an nginx message may hold: it sits in a quoted nginx string and, unescaped, in JSON.
_SAFE_MESSAGE = re.compile(r"[^\"'\x00-\x1f]*")


@dataclass(frozen=True)
class RunLayout:
    """Where one server run keeps its files, and whether it runs as root."""

    run_dir: Path
    worker_user: WorkerUser | None = None  # set when started as root
    # Sent by nginx with every request: the app trusts nginx's X-Request-Id only beside it.
    proxy_secret: str = ""

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
    def preload_off_file(self) -> Path:
        """Why the gunicorn master turned preload off (catwalk.server.worker.wsgi), if it did."""
        return self.run_dir / "preload-off.txt"

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
    errors = nginx_errors(settings)
    for error in errors:
        if not _SAFE_MESSAGE.fullmatch(error.message):
            raise ValueError(f"nginx message with a quote or backslash: {error.message!r}")
    nofile = tuning.open_files
    return _ENV.get_template("nginx.conf.j2").render(
        run_dir=layout.run_dir,
        socket=layout.socket,
        worker_processes=tuning.nginx_workers,
        rlimit_nofile=nofile,
        # Some descriptors go to logs, listening sockets and temp files.
        worker_connections=max(min(nofile - 64, MAX_WORKER_CONNECTIONS), 64),
        shutdown_timeout=settings.graceful_timeout + SHUTDOWN_MARGIN,
        client_timeout=settings.client_timeout,
        connections_per_client=settings.max_connections_per_client,
        trusted_proxies=settings.trusted_proxies,
        header_buffer_size=HEADER_BUFFER,
        errors=errors,
        proxy_secret=layout.proxy_secret,
        error_level=NGINX_LEVELS.get(settings.log_level, "warn"),
        user=user.user if user else None,
        group=user.group if user else None,
        port=settings.port,
        keepalive=settings.keepalive,
        max_body_size=settings.max_body_size,
        body_buffer_size=tuning.body_buffer_size,
        timeout=settings.timeout,
        upstream_keepalive=tuning.upstream_keepalive,
        upstream_idle=UPSTREAM_IDLE,
        ssl=ssl.enabled,
        ssl_cert=ssl.cert,
        ssl_key=ssl.key,
        ipv6=ipv6,
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
        timeout=settings.timeout + WORKER_TIMEOUT_MARGIN,
        server_timeout=settings.timeout,
        timeout_margin=WORKER_TIMEOUT_MARGIN,
        graceful_timeout=GRACEFUL_TIMEOUT,
        drain=settings.graceful_timeout,
        max_requests=settings.max_requests,
        max_requests_jitter=settings.max_requests_jitter,
        max_worker_memory=settings.max_worker_memory_bytes,
        max_worker_memory_text=settings.max_worker_memory,
        # With keep-alive from nginx, gunicorn must not close an idle connection before nginx
        # does (nginx would send the next request into a closing socket: a 502).
        keepalive=UPSTREAM_IDLE + 15 if tuning.upstream_keepalive else max(settings.keepalive, 1),
        preload=settings.preload,
        loglevel=settings.log_level.lower(),
        pidfile=str(layout.gunicorn_pid),
        proc_name=f"catwalk:{settings.port}",
        json_logs=settings.log_format == "json",
    )
