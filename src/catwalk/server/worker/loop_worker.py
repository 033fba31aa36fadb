"""catwalk's gunicorn worker: an event loop that takes a connection only when it can answer it.

gunicorn stays the process manager: its master forks, watches and replaces the workers, and
its timeout, ``max_requests``, graceful stop and the hooks of ``gunicorn.conf.py`` work as
with its own workers. Each worker runs an asyncio loop (uvloop) and answers every request
with the WSGI app, inline (:mod:`catwalk.server.worker.http_conn` parses), so an unbatched model
still gets one request at a time per worker, as with gunicorn's ``sync`` worker, and needs
no thread safety. What this saves per request is gunicorn's pure-Python HTTP parsing and
response writing: see bench/RESULTS.md.

Who takes a connection: all workers share gunicorn's listening socket, and the kernel queues
nginx's connections there until a worker accepts one. A worker accepts (one connection per
time, :meth:`LoopWorker._take`) only while it can answer at once:

* an unbatched model's worker holds one connection at a time. It stops listening when it
  accepts one and takes the next when that one is answered and closed, reading and
  answering it on the socket itself (:mod:`catwalk.server.worker.socket_transport`): a
  request waits in the kernel's queue for the first free worker, never behind a slow request
  in a busy one, and a worker that dies (killed, out of memory) loses only the request it was
  answering; the ones queued are taken by the others. When no connection has waited at its
  last ``QUIET`` answers, the worker keeps its connection alive (nginx keeps it too, and
  sends its next request on it: no connect, accept and close per request); it is still
  free, and before it takes another connection it reads the kept one once more and closes
  it (:meth:`LoopWorker._let_go_of_kept`), so that no request waits there while it is busy.
* a batching model's requests must meet in one worker, over kept-alive connections: its
  worker accepts while the bodies it is in the middle of reading stay below
  ``READ_BUDGET`` bodies' worth of bytes.

A request must arrive whole within ``server.client_timeout`` of its first byte (408
otherwise) and a connection idle longer than gunicorn's keepalive is closed (checked once a
second, :meth:`LoopWorker._tick`): nginx sends what it has buffered at once, so only a client
of the socket itself ever meets these.

A batching model's requests each run in a greenlet: one that reaches the collector
(:meth:`catwalk.server.batching.Batcher.submit`) waits there, and the loop reads the next
requests meanwhile; the collector calls the model once for the batch, in the loop, and
resumes each request's greenlet with its output. Still one thread: the model and the
requests never contend for the GIL.

Life cycle, as gunicorn's own workers:

* about once a second, between requests, the worker tells the master it is alive; a request
  (or a batch) stuck past gunicorn's timeout gets the worker aborted (SIGABRT) and replaced
  (the ``worker_abort`` hook logs each request in flight: :meth:`in_flight`);
* SIGTERM, ``max_requests`` or ``post_request`` setting ``alive = False``: stop accepting,
  answer what is already read, close the idle connections, exit; SIGQUIT/SIGINT: at once
  (``worker_int`` logs each request it cuts, and each client gets the JSON 503 with its
  own correlation id).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import select
import socket
import sys
from typing import Any

import uvloop
from greenlet import greenlet
from gunicorn.workers.base import Worker

from catwalk.correlation import new_correlation_id
from catwalk.errors import ProcessExit
from catwalk.server.environ import IN_FLIGHT_KEY, error_body
from catwalk.server.logs import LOGGER_NAME, safe, write_once_per_turn
from catwalk.server.ops.request_log import InFlight
from catwalk.server.worker.http_conn import Connection
from catwalk.server.worker.http_message import Request, json_answer, response_bytes
from catwalk.server.worker.socket_transport import SocketTransport

# Seconds between heartbeats to the master, and checks for a stop or a gone master.
TICK = 1.0
# Seconds a worker may answer connections one after another before its loop has a turn.
TURN = 0.05
# Seconds a stopping worker keeps serving the connections it has (each answer then closes its
# connection); one idle that long is closed. nginx reuses its most recent connections first.
LINGER = 0.5
# A batching worker accepts new connections while the requests it is in the middle of
# reading have brought less than this many maximal bodies (server.max_body_size).
READ_BUDGET = 4
# Answers in a row with no connection waiting, before an unbatched worker keeps its
# connection alive (LoopWorker._quiet).
QUIET = 16
# Seconds a worker out of file descriptors waits before it accepts again.
ACCEPT_RETRY = 0.5
# What a request cut by a stop is told when the worker_int hook gave no reason.
CUT = "the server is shutting down and the request did not finish in time"


class LoopWorker(Worker):  # type: ignore[misc]
    """gunicorn worker class ``catwalk.server.worker.loop_worker.LoopWorker``."""

    def init_process(self) -> None:
        self.loop = uvloop.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.connections: set[Connection] = set()
        self.listeners: list[socket.socket] = []
        self.listening = False
        self.taking = False  # in _take
        self.held = 0  # connections accepted and not closed yet
        # An unbatched worker's kept-alive connection, idle between two of its requests.
        self.kept: Connection | None = None
        self.quiet = 0  # answers in a row with no connection waiting (_quiet)
        self.waiting = select.poll()  # the listening sockets: does a connection wait there?
        # The largest body a request may bring: the server's max_body_size (nginx enforces it
        # first; only a client of the socket itself could send more), and how long a request
        # may take to arrive whole (server.client_timeout; nginx sends what it buffered).
        job = getattr(self.app, "job", None)  # catwalk.server.worker.wsgi.CatwalkApplication's
        self.max_body_bytes = job.settings.max_body_bytes if job is not None else 1 << 30
        self.request_timeout = float(job.settings.client_timeout) if job is not None else 10.0
        self.stopping = False
        self.half_read = 0  # requests begun and not complete (the collector waits for them)
        self.half_read_bytes = 0  # what those have brought so far
        self.cut_reason = CUT  # set by the worker_int hook (catwalk.server.worker.hooks)
        self.alive: bool = True
        self.base: dict[str, Any] = {}
        self.header_keys: dict[bytes, str] = {}  # Request.environ's, for this worker
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
        # Concurrent requests only for a batching model (they must meet in its collector, which
        # the app runs on this loop); the app is named by string, and may have no collector.
        attach = getattr(self.wsgi, "attach_loop", None)
        self.concurrent = bool(attach(self.loop, self.reading)) if attach is not None else False
        # A kept-alive connection may idle for gunicorn's keepalive (nginx closes its own
        # earlier); one that never brought a request, for the time a request may take.
        self.idle_timeout = float(self.cfg.keepalive)
        loop = self.loop
        flush_logs = write_once_per_turn(loop)
        for listener in self.sockets:
            listener.sock.setblocking(False)
            self.listeners.append(listener.sock)
            self.waiting.register(listener.sock.fileno(), select.POLLIN)
        loop.call_soon(self._take)
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
            flush_logs()

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

    # ------------------------------------------------------------- connections ----
    def _free(self) -> bool:
        """Whether this worker can answer one more connection now (module docstring)."""
        if self.stopping or not self.alive:
            return False
        if self.concurrent:
            return self.half_read_bytes < READ_BUDGET * self.max_body_bytes
        if self.held == 0:
            return True
        kept = self.kept  # its one connection, kept alive and idle: it may take another
        return self.held == 1 and kept is not None and kept.idle()

    def _listen(self) -> None:
        if not self.listening and self._free():
            for sock in self.listeners:
                self.loop.add_reader(sock.fileno(), self._take)
            self.listening = True

    def _unlisten(self) -> None:
        if self.listening:
            for sock in self.listeners:
                self.loop.remove_reader(sock.fileno())
            self.listening = False

    def _take(self) -> None:
        """Take connections while this worker is free; listen when none waits.

        Under load one always waits: an unbatched model's worker then takes, reads, answers
        and closes one connection after another without a turn of the loop (the loop has
        its turn every ``TURN`` seconds, for the heartbeat and the timers). The listening
        socket stays in the loop's poll while the worker is free (no system call per
        request to add and remove it), and leaves it the first time it signals a connection
        this worker cannot take now."""
        if self.taking:  # a connection closed while this goes on: it takes the next
            return
        if not self._free():  # the listening socket is polled only while this worker is free
            self._unlisten()
            return
        self.taking = True
        try:
            began = self.loop.time()
            while self._free():
                kept = self.kept
                if kept is not None and kept.read_now():
                    pass  # a request came on the kept connection first: it is answered
                elif not any(self._accept(sock) for sock in self.listeners):
                    self._listen()  # none waits: the loop tells when one comes
                    return
                if self.loop.time() - began > TURN:
                    self.loop.call_soon(self._take)
                    return
        finally:
            self.taking = False

    def _accept(self, listener: socket.socket) -> bool:
        """Take one connection, if one waits (another worker may have taken it first)."""
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return False
        except OSError as exc:  # out of descriptors or memory: the others take them meanwhile
            if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                raise
            self.log.warning("worker cannot accept a connection: %s", exc)
            self._unlisten()
            self.loop.call_later(ACCEPT_RETRY, self._listen)
            return False
        sock.setblocking(False)
        self.held += 1
        if not self.concurrent:  # read, answered and closed now if the request is all here
            self._let_go_of_kept()
            SocketTransport(self.loop, sock, Connection(self)).start()
            return True
        # The transport is made now (a task would wait a turn of the loop for it): the
        # coroutine runs up to its wait for connection_made, and is resumed after it.
        made = self.loop.connect_accepted_socket(self._connection, sock)
        made.send(None).add_done_callback(lambda _: _finish(made))
        return True

    def _let_go_of_kept(self) -> None:
        """Close the kept-alive connection before answering a new one: a request nginx sent
        on it now would wait behind the new one. ``_take`` read it just before, so such a
        request can only be one sent in the last microseconds; the worker never saw it, and
        nginx sends it again on a new connection (it retries a kept-alive connection's error,
        ``proxy_next_upstream error non_idempotent``)."""
        kept, self.kept = self.kept, None
        if kept is not None:
            kept.close_if_idle()

    def _quiet(self) -> bool:
        """Whether an unbatched worker may keep its connection alive: no connection has
        waited at the listening sockets (one ``poll``, no wait) at its last ``QUIET``
        answers. Under more load than the workers take at once, connections wait, and each
        answer closes its connection: a kept one would have to be closed when the worker
        takes the next, just as nginx may send on it (nginx sends that request again, but
        logs an error)."""
        if self.waiting.poll(0):
            self.quiet = 0
            return False
        self.quiet += 1
        return self.quiet > QUIET

    def released(self, conn: Connection) -> None:
        """A connection is closed: this worker may take the next one."""
        self.held -= 1
        if conn is self.kept:
            self.kept = None
        self._take()

    # ---------------------------------------------------------------- requests ----
    def answer(self, conn: Connection, request: Request) -> None:
        """Answer ``request`` (inline, or in its own greenlet for a batching model)."""
        conn.answering += 1
        if self.concurrent:
            if not self.listening:  # a body read whole may bring it back under its budget
                self._listen()
            greenlet(self._answer).switch(conn, request)
        else:
            self._answer(conn, request)

    def _answer(self, conn: Connection, request: Request) -> None:
        environ = conn.environ = request.environ(self.base, self.header_keys)
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
                # An unbatched model's worker holds one connection at a time: it keeps it
                # alive only while no other connection waits for a worker (module docstring).
                close = not (
                    request.keep_alive and self.alive and (self.concurrent or self._quiet())
                )
                data = response_bytes(
                    started[0], started[1], body, request.method == b"HEAD", close
                )
            finally:
                if hasattr(body, "close"):
                    body.close()
        except Exception:  # the app answers its errors itself: this is catwalk's own bug
            correlation_id = self._correlation_id(environ)
            self.log.exception("correlation_id=%s error handling the request", correlation_id)
            message = "internal server error (the worker)"
            close, data = True, json_answer(500, error_body(correlation_id, message))
        conn.answering -= 1
        conn.environ = None
        conn.write(data, close)
        if not (close or self.concurrent):
            self.kept = conn
        conn.answered()
        try:
            self.cfg.post_request(self, None, environ, None)
        except Exception:
            self.log.exception("Exception in post_request hook")
        if not self.alive:
            self.loop.call_soon(self._stop)

    # -------------------------------------------------------------- life cycle ----
    def in_flight(self) -> list[InFlight]:
        """The requests being answered now (what gunicorn's hooks describe)."""
        found = []
        for conn in self.connections:
            environ = conn.environ
            if conn.answering and environ is not None and IN_FLIGHT_KEY in environ:
                found.append(environ[IN_FLIGHT_KEY])
        return found

    @staticmethod
    def _correlation_id(environ: dict[str, Any]) -> str:
        state = environ.get(IN_FLIGHT_KEY)
        return (state.correlation_id() if state is not None else None) or new_correlation_id()

    def handle_quit(self, sig: int, frame: Any) -> None:
        """SIGQUIT/SIGINT: the worker ends at once. Each request it is answering (one, or for a
        batching model a batch in the model and others waiting) is logged as cut by the
        ``worker_int`` hook, and its client gets the JSON 503 with its own correlation id."""
        self.alive = False
        self.cfg.worker_int(self)
        for conn in list(self.connections):
            environ = conn.environ
            if conn.answering and environ is not None:
                state = environ.get(IN_FLIGHT_KEY)
                if state is not None and state.answered:
                    continue  # its answer is on its way
                conn.answering = 0
                correlation_id = self._correlation_id(environ)
                logging.getLogger(LOGGER_NAME).warning(
                    "correlation_id=%s the worker answered itself: 503 %s",
                    safe(correlation_id),
                    self.cut_reason,
                    extra={"correlation_id": correlation_id},
                )
                conn.write(json_answer(503, error_body(correlation_id, self.cut_reason)), True)
        raise ProcessExit(0)

    def handle_abort(self, sig: int, frame: Any) -> None:
        """SIGABRT: gunicorn's timeout ends the worker. The ``worker_abort`` hook logs each
        request in flight; the ProcessExit raised then passes through the model's call."""
        self.alive = False
        self.cfg.worker_abort(self)
        raise ProcessExit(1)

    def _tick(self) -> None:
        self.notify()
        if not self.alive or self.ppid != os.getppid():
            self._stop()
        else:
            now = self.loop.time()
            for conn in list(self.connections):
                kept = self.concurrent or conn is self.kept
                idle = self.idle_timeout if kept else self.request_timeout
                conn.expire(now, self.request_timeout, idle)
            self.loop.call_later(TICK, self._tick)

    def _stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.alive = False  # from now on every answer says Connection: close
        self._unlisten()
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


def _finish(made: Any) -> None:
    with contextlib.suppress(StopIteration):
        made.send(None)


def _no_write(data: bytes) -> None:
    raise NotImplementedError("catwalk's worker does not support the WSGI write() callable")
