"""Bearer-token auth (``server.auth.tokens_file``): a WSGI middleware in front of the app.

When a tokens file is configured, every request but ``GET /status``, ``GET /ready``, the
Open Inference Protocol's ``/v2/health/live`` and ``/v2/health/ready``, and the
docs page's static files (``/docs``, ``/docs/<asset>``: they hold nothing about the model)
must carry ``Authorization: Bearer <token>`` with a token from the file; otherwise it gets
401, the JSON error envelope and ``WWW-Authenticate: Bearer``.

- Tokens are kept as SHA-256 digests and the presented token's digest is compared with every
  one of them by :func:`hmac.compare_digest` (no early exit): the time taken says nothing
  about a token's content or length. No token, good or bad, is ever logged.
- Rotation: the file is looked at again at most once a second (its size, mtime and inode);
  a changed file is re-read, so adding a new token then removing the old one needs no
  restart. A file that becomes unreadable, shared with other users or empty is an error in
  the log, and the tokens read before stay in force until the file is fixed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from catwalk.correlation import new_correlation_id
from catwalk.errors import ConfigError
from catwalk.protocol.paths import is_v2
from catwalk.server import docs
from catwalk.server.environ import (
    CORRELATION_ID_KEY,
    REQUEST_ID_KEY,
    StartResponse,
    WsgiApp,
    error_body,
)
from catwalk.tokens_file import read_tokens, tokens_file_problem

PUBLIC_PATHS = frozenset({"/status", "/ready", "/v2/health/live", "/v2/health/ready"})
RECHECK_SECONDS = 1.0
_CHALLENGE = 'Bearer realm="catwalk"'


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class Tokens:
    """The tokens of one file, re-read when the file changes."""

    def __init__(self, path: Path, log: logging.Logger) -> None:
        self.path = path
        self.log = log
        self._digests: tuple[bytes, ...] = ()
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        problem = tokens_file_problem(path)
        if problem:
            raise ConfigError(f"server.auth.tokens_file: {problem}")
        self._reload()

    def _reload(self) -> None:
        stat = os.stat(self.path)
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if stamp == self._stamp:
            return
        problem = tokens_file_problem(self.path)
        tokens = [] if problem else read_tokens(self.path)
        if problem or not tokens:
            if not self._digests:
                raise ConfigError(f"server.auth.tokens_file: {problem or 'no tokens'}")
            self.log.error(
                "server.auth.tokens_file: %s; the tokens read before stay in force",
                problem or f"{self.path}: no tokens",
            )
        else:
            self._digests = tuple(_digest(t) for t in tokens)
        self._stamp = stamp

    def digests(self) -> tuple[bytes, ...]:
        now = time.monotonic()
        if now - self._checked >= RECHECK_SECONDS:
            self._checked = now
            try:
                self._reload()
            except (OSError, ConfigError, ValueError) as exc:
                self.log.error(
                    "server.auth.tokens_file: %s; the tokens read before stay in force", exc
                )
        return self._digests

    def accepts(self, token: str) -> bool:
        presented = _digest(token)
        found = False
        for digest in self.digests():
            found |= hmac.compare_digest(digest, presented)
        return found


class BearerAuth:
    """WSGI middleware: 401 unless the request brings a valid bearer token."""

    def __init__(self, app: WsgiApp, tokens: Tokens) -> None:
        self.app = app
        self.tokens = tokens

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in PUBLIC_PATHS or docs.is_public(path):
            return self.app(environ, start_response)
        header = environ.get("HTTP_AUTHORIZATION")
        if header is None:
            return self._deny(environ, start_response, "missing Authorization: Bearer <token>")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return self._deny(
                environ, start_response, "malformed Authorization header (expected Bearer <token>)"
            )
        if not self.tokens.accepts(token):
            return self._deny(environ, start_response, "invalid bearer token", invalid=True)
        return self.app(environ, start_response)

    @staticmethod
    def _deny(
        environ: dict[str, Any], start_response: StartResponse, why: str, *, invalid: bool = False
    ) -> Iterable[bytes]:
        correlation_id = environ.get(REQUEST_ID_KEY) or new_correlation_id()
        environ[CORRELATION_ID_KEY] = correlation_id
        challenge = _CHALLENGE + (', error="invalid_token"' if invalid else "")
        start_response(
            "401 Unauthorized",
            [("Content-Type", "application/json"), ("WWW-Authenticate", challenge)],
        )
        message = f"unauthorized: {why}"
        if is_v2(environ.get("PATH_INFO", "")):  # the Open Inference Protocol's error body
            return [orjson.dumps({"error": message})]
        return [error_body(correlation_id, message)]
