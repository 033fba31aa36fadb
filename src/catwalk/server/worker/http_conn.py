"""One HTTP/1.1 connection from nginx to a :mod:`catwalk.server.worker.loop_worker` worker.

nginx sends one request at a time on each connection, and keeps connections alive (upstream
keep-alive): a batching model's worker holds many, an unbatched model's one at a time
(:mod:`catwalk.server.worker.loop_worker` says when it keeps it).
:class:`Connection` parses them with httptools (llhttp, the C parser uvicorn uses) and hands
each complete :class:`Request` to the worker, which builds its PEP 3333 environ
(:meth:`Request.environ`) and answers it with the WSGI app. The answer is written
with :func:`~catwalk.server.worker.http_message.response_bytes`: status line, the app's
headers, ``Content-Length``.

Only nginx talks to this socket (it is ``0600``, or ``0660`` with the group of nginx's own
worker user), and nginx has already refused what is malformed, too large or too slow, with
JSON. What still reaches here and is refused (a parse error, headers or a body beyond the
bounds below, a protocol upgrade, a request not complete within its deadline) gets a JSON
answer naming the client's ``X-Correlation-Id`` (nginx always sends one), and the connection
is closed: even a client of the socket itself cannot hold a worker or its memory for long.

A connection's buffers (the parser, the body's chunks, the requests read) are dropped as soon
as it is closed, and a body as soon as its request is answered: nothing waits for the garbage
collector (the parser and the connection point at each other).

A connection is closed by the worker only when no request is being read or answered on it
(:meth:`Connection.close_if_idle`): a request nginx sends on a connection the worker has just
closed is one the worker never saw, and nginx sends it again on a new connection
(``proxy_next_upstream error non_idempotent`` in nginx.conf).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from typing import Any, Protocol

import httptools

from catwalk.correlation import new_correlation_id
from catwalk.server.environ import error_body
from catwalk.server.logs import LOGGER_NAME, safe
from catwalk.server.worker.http_message import Request, json_answer
from catwalk.server.worker.socket_transport import SocketTransport

# Bounds on what one request may bring before it is complete: far above what nginx forwards
# (a request line and header lines of at most 7k each; bodies up to server.max_body_size,
# checked against the worker's own bound), so only a client of the socket itself meets them.
MAX_HEADER_BYTES = 1 << 20
MAX_HEADERS = 1000
# What a refused request still names: the ids nginx sends in its head (read with a regex, as
# the parser may have stopped before them).
_HEAD_ID = re.compile(rb"\r\nX-Correlation-Id: ?([\x21\x23-\x5b\x5d-\x7e]{1,256})\r\n", re.I)
_HEAD_REQUEST_ID = re.compile(rb"\r\nX-Request-Id: ?([0-9A-Za-z-]{1,64})\r\n", re.I)


class Server(Protocol):
    """What a connection needs of its worker."""

    connections: set[Connection]
    max_body_bytes: int
    loop: asyncio.AbstractEventLoop
    half_read: int  # requests begun and not complete, on every connection
    half_read_bytes: int  # what those have brought so far

    def answer(self, conn: Connection, request: Request) -> None: ...

    def released(self, conn: Connection) -> None:
        """``conn`` is closed (by either side): the worker may take another."""


class Connection(asyncio.Protocol):
    """httptools gathers each request; :meth:`data_received` has the worker answer it."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.complete: deque[Request] = deque()
        self.reading = False  # a request has begun and is not complete yet
        self.received = 0  # bytes since the last complete request: head, body, framing
        self.last_active = 0.0  # loop.time() of the last answer (or of the connection)
        self.begun = 0.0  # loop.time() the request being read began
        self.answering = 0  # requests handed to the worker and not answered yet
        self.environ: dict[str, Any] | None = None  # of the request being answered
        self.write_paused = False  # nginx reads our answers slowly: read no more meanwhile
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.in_body = False
        self.body: list[bytes] = []
        self.body_bytes = 0

    # ------------------------------------------------------------------ asyncio ----
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)
        self.last_active = self.server.loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self._closed()

    def _close(self) -> None:
        """Close the transport (after what is written is sent) and let go of everything."""
        if self.transport is not None:
            self.transport.close()
        self._closed()

    def _closed(self) -> None:
        if self.transport is None and self.parser is None:
            return  # said already
        self.transport = None
        self._set_reading(False)
        self.server.half_read_bytes -= self.received
        self.received = 0
        # The parser points back at this connection: without this, only a GC pass would
        # free the two, and with them the chunks of a body.
        self.parser = None
        self.complete.clear()
        self.environ = None
        self._reset()
        self.server.released(self)

    def pause_writing(self) -> None:  # the answers wait in the buffer: read no more for now
        self.write_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.transport is not None and not self.answering:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None:  # closed: what is still delivered is not read
            return
        # Bounds on what a request may bring before it is complete (counted a read ahead):
        # its head, then head, body, chunk framing and trailers together.
        self.received += len(data)
        self.server.half_read_bytes += len(data)
        if not self.in_body and self.received > MAX_HEADER_BYTES:
            self.refuse(
                431, f"request header fields too large (more than {MAX_HEADER_BYTES} bytes)"
            )
            return
        if self.received > self.server.max_body_bytes + MAX_HEADER_BYTES:
            self.refuse(413, "payload too large")
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.refuse(400, "bad request: protocol upgrades are not served", data)
            return
        except httptools.HttpParserError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, TooLarge):
                self.refuse(cause.status, str(cause), data)
            else:
                self.refuse(400, f"bad request: {exc}", data)
            return
        self.answer_next()

    def answer_next(self) -> None:
        """Answer the complete requests in order, one at a time: while one is pending (a
        batch), reading pauses and the next waits (:meth:`answered` resumes)."""
        while self.complete and self.transport is not None and not self.answering:
            self.server.answer(self, self.complete.popleft())
        if self.answering and self.transport is not None:
            self.transport.pause_reading()

    def answered(self) -> None:
        """The pending answer is written: read and answer what follows."""
        if self.transport is not None:
            if not self.write_paused:
                self.transport.resume_reading()
            if self.complete:
                self.server.loop.call_soon(self.answer_next)

    # ---------------------------------------------------------------- httptools ----
    def on_message_begin(self) -> None:
        self._reset()
        self._set_reading(True)
        self.begun = self.server.loop.time()

    def _set_reading(self, reading: bool) -> None:
        if reading != self.reading:
            self.reading = reading
            self.server.half_read += 1 if reading else -1

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_body:  # a trailer (chunked body): not a header of the request
            return
        self.headers.append((name, value))
        if len(self.headers) > MAX_HEADERS:
            raise TooLarge(431, f"request header fields too large (more than {MAX_HEADERS})")

    def on_headers_complete(self) -> None:
        self.in_body = True

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes > self.server.max_body_bytes:
            raise TooLarge(413, "payload too large")
        self.body.append(body)

    def on_message_complete(self) -> None:
        parser = self.parser
        assert parser is not None  # it is the one calling
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        self.body = []  # the request holds the body now, until it is answered
        self.complete.append(
            Request(
                parser.get_method(),
                self.url,
                self.headers,
                body,
                parser.get_http_version(),
                parser.should_keep_alive(),
            )
        )
        self._set_reading(False)
        self.in_body = False
        self.server.half_read_bytes -= self.received
        self.received = 0

    # ------------------------------------------------------------------ answers ----
    def write(self, data: bytes, close: bool) -> None:
        """Send ``data`` (a whole answer); ``close``: then close the connection."""
        transport = self.transport
        if transport is None:  # nginx went away (its client did)
            return
        transport.write(data)
        self.last_active = self.server.loop.time()
        if close:
            self._close()  # the transport sends what is written first

    def refuse(self, status: int, message: str, head: bytes = b"") -> None:
        """Answer JSON to what is not passed to the app, log it, and close the connection.

        ``head``: what was read of the request; the client's ``X-Correlation-Id`` found
        there names the answer, and nginx's ``X-Request-Id`` the log line.
        """
        found = _HEAD_ID.search(head)
        correlation_id = found.group(1).decode("ascii") if found else new_correlation_id()
        found = _HEAD_REQUEST_ID.search(head)
        request_id = found.group(1).decode("ascii") if found else None
        logging.getLogger(LOGGER_NAME).warning(
            "correlation_id=%s the worker refused a request: %d %s%s",
            correlation_id,
            status,
            safe(message),
            f" request_id={request_id}" if request_id and request_id != correlation_id else "",
            extra={"correlation_id": correlation_id},
        )
        self.write(json_answer(status, error_body(correlation_id, message)), True)

    def expire(self, now: float, request_timeout: float, idle_timeout: float) -> None:
        """Refuse a request still incomplete ``request_timeout`` seconds after it began
        (408), or close the connection idle for ``idle_timeout`` seconds."""
        if self.transport is None or self.answering:
            return
        if self.reading:
            if now - self.begun > request_timeout:
                self.refuse(408, f"the request did not arrive whole within {request_timeout:g} s")
        elif not self.complete and now - self.last_active > idle_timeout:
            self._close()

    def idle(self) -> bool:
        """Open, with no request being read, waiting or answered on it."""
        return not (self.reading or self.complete or self.answering) and self.transport is not None

    def read_now(self) -> bool:
        """Read at once what has come on this connection (an unbatched worker's kept-alive
        one, on its :class:`SocketTransport`); False: nothing had come."""
        transport = self.transport
        return isinstance(transport, SocketTransport) and transport.read()

    def close_if_idle(self, since: float = float("inf")) -> bool:
        """Close the connection unless a request is being read or answered on it, or it has
        been busy after ``since`` (``loop.time()``); True if closed."""
        if not self.idle() or self.last_active > since:
            return False
        self._close()
        return True


class TooLarge(Exception):
    """Raised in a parser callback: the request passed one of the bounds above."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
