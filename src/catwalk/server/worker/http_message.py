"""An HTTP/1.1 message as the worker sees it: the :class:`Request` a connection has read
whole (:mod:`catwalk.server.worker.http_conn`), its WSGI environ, and the bytes of an answer.

The environ is built as gunicorn builds it (PEP 3333); an answer carries the app's status and
headers with a ``Content-Length`` of catwalk's own count (:func:`response_bytes`), or is one
of the worker's own JSON refusals (:func:`json_answer`).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from catwalk.server.environ import header_key

# Header names a worker remembers the environ key of (nginx sends the same dozen each time).
MAX_HEADER_KEYS = 256

_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class Request:
    """A complete request as parsed; :meth:`environ` makes its WSGI environ."""

    __slots__ = ("body", "headers", "keep_alive", "method", "url", "version")

    def __init__(
        self,
        method: bytes,
        url: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        version: str,
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.version = version
        self.keep_alive = keep_alive

    def environ(self, base: dict[str, Any], keys: dict[bytes, str] | None = None) -> dict[str, Any]:
        """The WSGI environ (``base``: the keys every request of the worker shares; ``keys``:
        the worker's header names already turned into environ keys, filled as it goes).

        As gunicorn builds it: ``PATH_INFO`` percent-decoded (latin-1, PEP 3333), repeated
        headers joined with commas, headers whose name holds ``_`` dropped (``X_Foo`` could
        pose as ``X-Foo``), ``wsgi.url_scheme`` from nginx's ``X-Forwarded-Proto``.
        """
        if keys is None:
            keys = {}
        environ = base.copy()
        url = self.url
        path, _, query = url.partition(b"?")
        if b"%" in path:
            path = unquote_to_bytes(path)
        environ["REQUEST_METHOD"] = self.method.decode("latin-1")
        environ["PATH_INFO"] = path.decode("latin-1")
        environ["QUERY_STRING"] = query.decode("latin-1")
        environ["RAW_URI"] = url.decode("latin-1")
        environ["SERVER_PROTOCOL"] = "HTTP/" + self.version
        environ["wsgi.input"] = io.BytesIO(self.body)
        for name, value in self.headers:
            key = keys.get(name)
            if key is None:
                key = _environ_key(name)
                if len(keys) < MAX_HEADER_KEYS:  # a client of the socket cannot grow it more
                    keys[name] = key
            if not key:  # dropped
                continue
            text = value.decode("latin-1")
            if key in environ and key.startswith("HTTP_"):
                environ[key] += "," + text
            else:
                environ[key] = text
        if self.body and "CONTENT_LENGTH" not in environ:  # a chunked body, read whole
            environ["CONTENT_LENGTH"] = str(len(self.body))
        host = environ.get("HTTP_HOST")
        if host:
            name, colon, port = host.rpartition(":")
            if colon and port.isdigit() and not name.endswith(":"):  # not a bare IPv6
                environ["SERVER_NAME"], environ["SERVER_PORT"] = name, port
            else:
                environ["SERVER_NAME"] = host
        if environ.get("HTTP_X_FORWARDED_PROTO") == "https":
            environ["wsgi.url_scheme"] = "https"
        return environ


def _environ_key(name: bytes) -> str:
    """The environ key of a header (``X-Request-Id`` -> ``HTTP_X_REQUEST_ID``); "" for one
    that is dropped (its name holds ``_``)."""
    text = name.decode("latin-1")
    return "" if "_" in text else header_key(text)


def json_answer(status: int, body: bytes, reason: str | None = None) -> bytes:
    """A whole ``Connection: close`` answer with a JSON body."""
    reason = reason or _REASONS.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def response_bytes(
    status: str,
    headers: list[tuple[str, str]],
    body: Iterable[bytes],
    head_only: bool,
    close: bool,
) -> bytes:
    """The HTTP/1.1 answer for a WSGI status, header list and body (read whole).

    ``Content-Length`` is the body's length (the app's own is checked, not trusted: a wrong
    one would put the kept-alive connection out of step), none for 1xx, 204 and 304; the
    app's hop-by-hop headers are dropped; ``close`` adds ``Connection: close``; every answer
    says ``X-Content-Type-Options: nosniff``. A header with
    a line break raises ValueError (it would split the answer). nginx sets ``Date`` and
    ``Server`` itself.
    """
    chunks = body if isinstance(body, list) else list(body)
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    lines = ["HTTP/1.1 ", status, "\r\n"]
    length: str | None = None
    for name, value in headers:
        key = name.lower()
        if key in _HOP_BY_HOP:
            continue
        if key == "content-length":
            length = value
            continue
        if _BREAKS.search(name) or _BREAKS.search(value):
            raise ValueError(f"line break in the response header {name!r}")
        lines += (name, ": ", value, "\r\n")
    # No answer of the server is ever to be sniffed into HTML by a browser.
    lines.append("X-Content-Type-Options: nosniff\r\n")
    code = status[:3]
    if code not in _NO_BODY and code[0] != "1":
        if head_only:  # HEAD: the length of what GET would send (the app's, if it gave one)
            lines += ("Content-Length: ", length or str(len(data)), "\r\n")
        else:
            lines += ("Content-Length: ", str(len(data)), "\r\n")
    if close:
        lines.append("Connection: close\r\n")
    lines.append("\r\n")
    head = "".join(lines).encode("latin-1")
    return head if head_only or code in _NO_BODY else head + data


_HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "transfer-encoding", "upgrade", "x-content-type-options")
)
_NO_BODY = frozenset(("204", "304"))
_BREAKS = re.compile(r"[\r\n\0]")
