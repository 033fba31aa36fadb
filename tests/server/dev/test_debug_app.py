"""Debug mode's WSGI wrapper in process (dev/debug.py): the body limit holds for chunked
bodies too."""

from __future__ import annotations

import io
from typing import Any

from catwalk.server.dev.debug import DebugApp


def test_debug_body_limit_holds_for_chunked_bodies() -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen["length"] = environ["CONTENT_LENGTH"]
        seen["body"] = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b""]

    guarded = DebugApp(app, 10)
    statuses: list[list[tuple[str, str]]] = []
    for body in (b"x" * 10, b"x" * 50):
        environ = {"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True}
        guarded(environ, lambda status, headers, exc=None: statuses.append(headers))
        assert "wsgi.input_terminated" not in environ
    assert seen["length"] == "11" and seen["body"] == b"x" * 11  # over: the app answers 413
    assert statuses[0] == [] and statuses[1] == [("Connection", "close")]
