"""What catwalk's WSGI pieces share about a request: where its ids are, and its error body.

The app and its routes, the operational layers (:mod:`catwalk.server.ops`) and catwalk's
gunicorn worker (:mod:`catwalk.server.worker`) meet only in the WSGI environ; the keys they
leave there, the correlation id a request has before its body is read, and the JSON body of
every error answer (which names that id) are defined here, once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson

# Where a view leaves the request's correlation id for the request line (WSGI environ key).
CORRELATION_ID_KEY = "catwalk.correlation_id"
# Where production mode leaves nginx's request id (X-Request-Id) for the app (WSGI environ key);
# never set in debug mode, where a client's X-Request-Id header is not trusted.
REQUEST_ID_KEY = "catwalk.request_id"
# Where the request log leaves the request's InFlight (WSGI environ key; ops.request_log).
IN_FLIGHT_KEY = "catwalk.in_flight"
# Where the one error handler (catwalk.server.failures) leaves the JSON error's message, for
# the request's span (WSGI environ key; catwalk.tracing).
ERROR_MESSAGE_KEY = "catwalk.error_message"
# Where a model repository's routes leave ``(name, version)`` of the model that answered
# (WSGI environ key): the request line names it (catwalk.server.repository_routes).
MODEL_KEY = "catwalk.model"
# X-Correlation-Id: visible ASCII without quote or backslash (nginx checks the same, and
# writes it into JSON unescaped).
CORRELATION_ID_HEADER = "HTTP_X_CORRELATION_ID"
_HEADER_ID = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,256}")

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def header_key(name: str) -> str:
    """The WSGI environ key of a header (PEP 3333): ``X-Request-Id`` -> ``HTTP_X_REQUEST_ID``,
    ``Content-Type`` -> ``CONTENT_TYPE``."""
    key = name.upper().replace("-", "_")
    return key if key in ("CONTENT_LENGTH", "CONTENT_TYPE") else "HTTP_" + key


def default_correlation_id(environ: dict[str, Any]) -> str | None:
    """The id of a request whose body names none: the client's X-Correlation-Id header when
    well formed, else nginx's request id (production mode), else None (one is generated)."""
    header = environ.get(CORRELATION_ID_HEADER)
    if header is not None and _HEADER_ID.fullmatch(header):
        return str(header)
    return environ.get(REQUEST_ID_KEY)


def error_body(correlation_id: str | None, message: str) -> bytes:
    """The JSON body of every error response."""
    return orjson.dumps({"correlation_id": correlation_id, "output": {"message": message}})
