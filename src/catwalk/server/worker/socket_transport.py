"""The transport of an unbatched model's connection: the worker drives the socket itself.

An unbatched model's worker takes one connection at a time
(:mod:`catwalk.server.worker.loop_worker`) and nginx sends each request whole as soon as it has
connected, so the request is nearly always there when the connection is accepted.
:class:`SocketTransport` reads it at once, the worker answers it inline and the answer is sent
at once: no turn of the event loop per request (an asyncio transport would wait one for
``connection_made``, and one more for the first read). Only what is not there at once (a large
body, a slow client of the socket) is waited for through the loop's reader, and only what the
socket does not take at once (a large answer) through its writer. A connection the worker
keeps alive between two requests is read through the loop's reader too.

It offers what :class:`catwalk.server.worker.http_conn.Connection` uses of an asyncio transport:
``write``, ``close``, ``abort``, ``pause_reading`` and ``resume_reading``.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

# Bytes read per call (uvloop's read buffer is as large).
READ_SIZE = 256 * 1024


class SocketTransport:
    """One accepted, non-blocking socket and the protocol it feeds (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, protocol: Any):
        self.loop = loop
        self.sock = sock
        self.fd = sock.fileno()
        self.protocol = protocol
        self.pending = b""  # what the socket did not take yet
        self.reader = False  # registered with the loop
        self.writer = False
        self.paused = False
        self.closing = False  # close once what is pending is sent
        self.closed = False

    def start(self) -> None:
        """Hand the transport to the protocol and read what has arrived."""
        self.protocol.connection_made(self)
        if not self.closed:
            self.read()

    # ------------------------------------------------------------------ reading ----
    def read(self) -> bool:
        """Read once; wait through the loop for more unless the protocol is done with it.
        False: nothing had come."""
        try:
            data = self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            self._want_read(True)
            return False
        except OSError as exc:
            self._lost(exc)
            return True
        if not data:  # the peer closed
            self._lost(None)
            return True
        self.protocol.data_received(data)
        self._want_read(not (self.closed or self.closing or self.paused))
        return True

    def _want_read(self, wanted: bool) -> None:
        if wanted and not self.reader and not self.closed:
            self.loop.add_reader(self.fd, self.read)
            self.reader = True
        elif not wanted and self.reader:
            self.loop.remove_reader(self.fd)
            self.reader = False

    def pause_reading(self) -> None:
        self.paused = True
        self._want_read(False)

    def resume_reading(self) -> None:
        self.paused = False
        self._want_read(not (self.closed or self.closing))

    # ------------------------------------------------------------------ writing ----
    def write(self, data: bytes) -> None:
        if self.closed or self.closing:
            return
        if self.pending:
            self.pending += data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lost(exc)
            return
        if sent < len(data):
            self.pending = data[sent:]
            self.loop.add_writer(self.fd, self._flush)
            self.writer = True

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self.pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        self.pending = self.pending[sent:]
        if not self.pending:
            self.loop.remove_writer(self.fd)
            self.writer = False
            if self.closing:
                self._lost(None)

    # ------------------------------------------------------------------ closing ----
    def close(self) -> None:
        """Close once what is written is sent."""
        if self.closed:
            return
        self.closing = True
        self._want_read(False)
        if not self.pending:
            self._lost(None)

    def abort(self) -> None:
        """Close now, whatever is still pending."""
        self._lost(None)

    def _lost(self, exc: Exception | None) -> None:
        if self.closed:
            return
        self.closed = True
        self._want_read(False)
        if self.writer:
            self.loop.remove_writer(self.fd)
            self.writer = False
        self.pending = b""
        self.sock.close()
        self.protocol.connection_lost(exc)
