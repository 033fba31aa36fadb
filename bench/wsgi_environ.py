"""A WSGI environ for ``POST /predict``, to call an app without a server (no catwalk import:
the benchmarks call older trees' apps with it too)."""

from __future__ import annotations

import io
import sys
from typing import Any


def predict_environ(body: bytes) -> dict[str, Any]:
    """A fresh WSGI environ for ``POST /predict`` with ``body``."""
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/predict",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "9090",
        "SERVER_PROTOCOL": "HTTP/1.0",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
    }
