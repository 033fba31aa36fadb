"""Debug mode's server (``catwalk serve --debug``): Flask's development server, made robust.

* **Threaded**: each connection has its own thread, so one idle or slow client does not block
  the others; an idle connection is closed after ``server.client_timeout``.
* **One request at a time in the app**, as in each production worker: the body is read
  in full first (outside the lock), then the app runs under a lock, so user models need not
  be thread-safe (the RNG example seeds a shared generator per request). A batching model is
  the exception, as in production: its requests run side by side to meet in the batcher,
  which alone calls the model.
* **The body limit holds for chunked bodies too**: a body without Content-Length is read up
  to ``server.max_body_size`` + 1 byte; over the limit, the app sees that length and answers
  its JSON 413 (instead of parsing a silently truncated body), and the connection is closed.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterable
from typing import Any

from werkzeug.serving import WSGIRequestHandler

from catwalk.server.environ import StartResponse, WsgiApp


class DebugApp:
    """WSGI middleware: read the whole body (bounded), then run the app (under a lock)."""

    def __init__(self, app: WsgiApp, max_body: int, *, one_at_a_time: bool = True) -> None:
        self.app = app
        self.max_body = max_body
        self.lock: Any = threading.Lock() if one_at_a_time else contextlib.nullcontext()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        over = False
        length = environ.get("CONTENT_LENGTH") or ""
        chunked = environ.get("wsgi.input_terminated", False)
        if chunked or (length.isdigit() and int(length) <= self.max_body):
            # Read it now: a chunked body up to one byte over the limit, otherwise as long as
            # it says (a longer one is the app's 413, unread).
            data = environ["wsgi.input"].read(self.max_body + 1 if chunked else int(length))
            over = len(data) > self.max_body
            environ["wsgi.input"] = io.BytesIO(data)
            environ["CONTENT_LENGTH"] = str(len(data))
            environ.pop("wsgi.input_terminated", None)
            environ.pop("HTTP_TRANSFER_ENCODING", None)

        def respond(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if over and not any(k.lower() == "connection" for k, _ in headers):
                # The rest of the body is unread: this connection cannot go on.
                headers = [*headers, ("Connection", "close")]
            return start_response(status, headers, exc_info)

        with self.lock:
            result = self.app(environ, respond)
            try:
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


def request_handler(timeout: int) -> type[WSGIRequestHandler]:
    """The development server's handler with a socket timeout: idle connections end."""
    return type("TimedRequestHandler", (WSGIRequestHandler,), {"timeout": timeout})
