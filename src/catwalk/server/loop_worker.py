"""catwalk's gunicorn worker: an event loop (keep-alive connections from nginx when batching).

gunicorn stays the process manager: its master forks, watches and replaces the workers, and
its timeout, ``max_requests``, graceful stop and the hooks of ``gunicorn.conf.py`` work as
with its own workers. Each worker runs an asyncio loop (uvloop) on the listening socket and
answers every request with the WSGI app, inline (:mod:`catwalk.server.http_conn` parses),
so an unbatched model still gets one request at a time per worker, as with gunicorn's
``sync`` worker, and needs no thread safety. What this saves per request is gunicorn's
pure-Python HTTP parsing and response writing and a connection (accept, close) per request:
see bench/RESULTS.md.

A batching model's requests each run in a greenlet: one that reaches the collector
(:meth:`catwalk.server.batching.Batcher.submit`) waits there, and the loop reads the next
requests meanwhile; the collector calls the model once for the batch, in the loop, and
resumes each request's greenlet with its output. Still one thread: the model and the
requests never contend for the GIL.

Life cycle, as gunicorn's own workers:

* about once a second, between requests, the worker tells the master it is alive; a request
  (or a batch) stuck past gunicorn's timeout gets the worker aborted (SIGABRT) and replaced;
* SIGTERM, ``max_requests`` or ``post_request`` setting ``alive = False``: stop accepting,
  answer what is already read, close the idle connections, exit; SIGQUIT/SIGINT: at once
  (``worker_int`` logs the request it cuts, and its client gets the JSON 503).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

import uvloop
from greenlet import greenlet
from gunicorn.workers.base import Worker

from catwalk.server import batching, wsgi
from catwalk.server.http_conn import Connection, Request, response_bytes
from catwalk.server.logs import in_flight

# Seconds between heartbeats to the master, and checks for a stop or a gone master.
TICK = 1.0
# Seconds a stopping worker keeps serving the connections it has (each answer then closes its
# connection); one idle that long is closed. nginx reuses its most recent connections first.
LINGER = 0.5
# Pending connections the listening socket queues (gunicorn's default backlog).
BACKLOG = 2048


class LoopWorker(Worker):  # type: ignore[misc]
    """gunicorn worker class ``catwalk.server.loop_worker.LoopWorker``."""

    def init_process(self) -> None:
        self.loop = uvloop.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.connections: set[Connection] = set()
        self.servers: list[asyncio.AbstractServer] = []
        # The largest body a request may bring: the server's max_body_size (nginx enforces it
        # first; only a client of the socket itself could send more).
        job = getattr(self.app, "job", None)  # catwalk.server.wsgi.CatwalkApplication's
        self.max_body_bytes = job.settings.max_body_bytes if job is not None else sys.maxsize
        self.stopping = False
        self.half_read = 0  # requests begun and not complete (the collector waits for them)
        self.alive: bool = True
        self.base: dict[str, Any] = {}
        super().init_process()  # loads the app, sets the signals, calls run()

    def run(self) -> None:
        self.base = {
            "SCRIPT_NAME": "",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "REMOTE_ADDR": "",
            "SERVER_SOFTWARE": "catwalk",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": self.cfg.workers > 1,
            "wsgi.run_once": False,
        }
        # Concurrent requests only for a batching model (they must meet in its collector).
        self.concurrent = batching.attach_loop(self.loop, self.reading)
        loop = self.loop
        for listener in self.sockets:
            sock = listener.sock
            if sock.family == socket.AF_UNIX:
                serve = loop.create_unix_server(self._connection, sock=sock, backlog=BACKLOG)
            else:
                serve = loop.create_server(self._connection, sock=sock, backlog=BACKLOG)
            self.servers.append(loop.run_until_complete(serve))
        loop.set_exception_handler(self._loop_error)
        self._exit: BaseException | None = None
        self._tick()  # the master counts a worker's timeout from its first heartbeat
        try:
            loop.run_forever()
            if self._exit is not None:
                raise self._exit
        finally:
            for conn in list(self.connections):
                if conn.transport is not None:
                    conn.transport.abort()
            loop.close()

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, SystemExit):  # gunicorn ends the worker (abort, cut): said already
            self._exit = exc
            loop.stop()
        else:
            loop.default_exception_handler(context)

    def _connection(self) -> Connection:
        return Connection(self)

    def reading(self) -> int:
        """How many connections are in the middle of reading a request."""
        return self.half_read

    # ---------------------------------------------------------------- requests ----
    def answer(self, conn: Connection, request: Request) -> None:
        """Answer ``request`` (inline, or in its own greenlet for a batching model)."""
        conn.answering += 1
        if self.concurrent:
            greenlet(self._answer).switch(conn, request)
        else:
            self._answer(conn, request)

    def _answer(self, conn: Connection, request: Request) -> None:
        environ = conn.environ = request.environ(self.base)
        self.nr += 1
        if self.nr >= self.max_requests and self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = (status, headers)
            return _no_write

        try:
            body = self.wsgi(environ, start_response)
            try:
                close = not (request.keep_alive and self.alive)
                data = response_bytes(
                    started[0], started[1], body, request.method == b"HEAD", close
                )
            finally:
                if hasattr(body, "close"):
                    body.close()
        except SystemExit:
            if wsgi.cutting():  # a stop cut this request: its client gets the JSON 503
                conn.answering -= 1
                conn.write(wsgi.json_error(500, "Internal Server Error", ""), True)
            raise
        except Exception:  # the app answers its errors itself: this is catwalk's own bug
            self.log.exception("Error handling request")
            close, data = True, wsgi.json_error(500, "Internal Server Error", "")
        conn.answering -= 1
        conn.environ = None
        conn.write(data, close)
        conn.answered()
        try:
            self.cfg.post_request(self, None, environ, None)
        except Exception:
            self.log.exception("Exception in post_request hook")
        if not self.alive:
            self.loop.call_soon(self._stop)

    # -------------------------------------------------------------- life cycle ----
    def handle_quit(self, sig: int, frame: Any) -> None:
        """SIGQUIT/SIGINT: the worker ends at once. A batching model's worker may be answering
        several requests (a batch in the model, others waiting): each is logged as cut by the
        ``worker_int`` hook and answered the JSON 503, as the one request of an unbatched
        worker is (in :meth:`_answer`)."""
        if self.concurrent:
            for conn in self._in_flight():
                self.cfg.worker_int(self)
                conn.answering = 0
                conn.write(wsgi.json_error(500, "Internal Server Error", ""), True)
            in_flight.environ = None  # each is said: the base class's call has nothing left
        super().handle_quit(sig, frame)

    def handle_abort(self, sig: int, frame: Any) -> None:
        """SIGABRT: gunicorn's timeout. A batching model's worker logs every request it is
        answering (the batch stuck in the model), through the ``worker_abort`` hook."""
        if not self.concurrent:
            super().handle_abort(sig, frame)
            return
        self.alive = False
        for _ in self._in_flight():
            self.cfg.worker_abort(self)
        sys.exit(1)

    def _in_flight(self) -> Iterator[Connection]:
        """Each connection with a request being answered, that request made ``in_flight``
        (what gunicorn's hooks describe) while it is the one yielded."""
        for conn in list(self.connections):
            if conn.answering and conn.environ is not None:
                in_flight.environ, in_flight.correlation_id = conn.environ, None
                in_flight.answered = False
                yield conn

    def _tick(self) -> None:
        self.notify()
        if not self.alive or self.ppid != os.getppid():
            self._stop()
        else:
            self.loop.call_later(TICK, self._tick)

    def _stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.alive = False  # from now on every answer says Connection: close
        for server in self.servers:
            server.close()
        # The requests already read are answered (a batching worker may hold many), for at
        # most gunicorn's graceful_timeout: the master ends a worker still alive then.
        now = self.loop.time()
        self._close_idle(now - LINGER, now + max(float(self.cfg.graceful_timeout) - 0.5, 1.0))

    def _close_idle(self, since: float, deadline: float) -> None:
        # A connection just accepted, or just used, may have a request on its way: it is
        # answered (and closed) if one comes; only one idle for LINGER seconds is closed.
        for conn in list(self.connections):
            conn.close_if_idle(since)
        if self.connections and self.loop.time() < deadline:
            self.loop.call_later(0.01, self._close_idle, since + 0.01, deadline)
            return
        unanswered = sum(conn.answering for conn in self.connections)
        if unanswered:
            self.log.warning("worker stops with %d request(s) unanswered", unanswered)
        self.loop.stop()


def _no_write(data: bytes) -> None:
    raise NotImplementedError("catwalk's worker does not support the WSGI write() callable")
