"""Error messages given both by the Flask app and by nginx (which answers some errors itself).

One wording per error, whichever process answers it; docs/serving.md lists them.
"""

from __future__ import annotations


def too_large(limit: str) -> str:
    """413: the body is over ``server.max_body_size`` (``limit`` as written there, e.g. 1m)."""
    return f"body: too large: the limit is {limit} (server.max_body_size)"


# Every route a server answers, for "no such endpoint" messages (the app's and nginx's).
ROUTES = (
    "GET /status",
    "GET /ready",
    "GET /info",
    "POST /predict",
    "GET /metrics",
    "GET /openapi.json",
    "GET /docs",
)
