"""``GET /ready``: whether this server takes work (the readiness probe), apart from ``/status``.

``/status`` is liveness: 200 as long as the process answers. ``/ready`` is 200 once the app
is built (the model loaded and, in production, warmed up: :mod:`catwalk.server.worker.warmup`)
and until a graceful stop begins; then it answers 503 (the JSON error envelope) so that a load
balancer or Kubernetes stops sending requests *before* the server drains and closes its port.

The state is the app's own (``ModelApp.readiness``). In production mode the supervisor
announces a stop to every gunicorn worker at once by creating the run folder's ``stopping``
file (:attr:`Readiness.stop_file`, set by :mod:`catwalk.server.worker.wsgi`); only ``/ready``
looks for it, so the hot path pays nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import orjson

from catwalk.correlation import new_correlation_id
from catwalk.server.environ import REQUEST_ID_KEY, StartResponse, error_body

READY_PATH = "/ready"
_READY_BODY = orjson.dumps({"status": "ready"})
_JSON = [("Content-Type", "application/json")]


class Readiness:
    """One app's readiness: warming up? stopping?"""

    __slots__ = ("stop_file", "stopping", "warming")

    def __init__(self) -> None:
        self.warming = False  # production: the worker predicts its warm-up examples first
        self.stopping = False
        self.stop_file: str | None = None  # production: the supervisor creates it on a stop

    def problem(self) -> str | None:
        """Why the server is not ready (None when it is)."""
        if self.stopping or (self.stop_file is not None and os.path.exists(self.stop_file)):
            return "not ready: the server is stopping (draining the requests in flight)"
        if self.warming:
            return "not ready: the model is warming up (predicting its test examples)"
        return None


def answer_ready(
    readiness: Readiness, environ: dict[str, Any], start_response: StartResponse
) -> Iterable[bytes]:
    """The WSGI answer of ``GET /ready``: 200 ``{"status": "ready"}`` or a 503 envelope."""
    problem = readiness.problem()
    if problem is None:
        start_response("200 OK", list(_JSON))
        return [_READY_BODY]
    correlation_id = environ.get(REQUEST_ID_KEY) or new_correlation_id()
    start_response("503 Service Unavailable", [*_JSON, ("Retry-After", "1")])
    return [error_body(correlation_id, problem)]
