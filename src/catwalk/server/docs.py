"""``GET /docs``: Swagger UI for the server's own ``/openapi.json``, served offline.

The page and every asset it loads come from this server: Swagger UI's files ship in the
``flask-swagger-ui`` package (a catwalk dependency, Apache-2.0, its licence served at
``/docs/LICENSE``) and are read from the installed package; nothing is fetched from a CDN,
and a ``Content-Security-Policy`` of ``'self'`` makes the browser refuse anything else.

When the server requires bearer tokens (``server.auth``), the page and its assets stay public
(they hold nothing about the model): the page asks for a token when ``/openapi.json`` answers
401, keeps it in the tab's ``sessionStorage`` and sends it with every request it makes.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

ASSET_PREFIX = "/docs/"
SCRIPT_NAME = "catwalk-docs.js"
_PACKAGE = "flask_swagger_ui"
_TYPES = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
    "LICENSE": "text/plain; charset=utf-8",
}
# Swagger UI sets inline styles and uses data: images for its icons; everything else is 'self'.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} - API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/catwalk-docs.js"></script>
</body>
</html>
"""

SCRIPT = """// catwalk: Swagger UI on this server's /openapi.json (no CDN).
(function () {
  "use strict";
  var KEY = "catwalk-token";
  function withToken(request) {
    var token = window.sessionStorage.getItem(KEY);
    if (token && !request.headers.Authorization) {
      request.headers.Authorization = "Bearer " + token;
    }
    return request;
  }
  function askOn401(response) {
    if (response.status === 401 && /\\/openapi\\.json$/.test(response.url)) {
      var token = window.prompt("This server requires a bearer token (server.auth):");
      if (token) {
        window.sessionStorage.setItem(KEY, token.trim());
        window.location.reload();
      }
    }
    return response;
  }
  window.onload = function () {
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
      requestInterceptor: withToken,
      responseInterceptor: askOn401
    });
  };
})();
"""


def page(title: str) -> bytes:
    """The HTML of ``/docs`` for a model called ``title``."""
    escaped = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return PAGE.format(title=escaped).encode("utf-8")


def asset(name: str) -> tuple[bytes, str, str] | None:
    """``(body, content type, etag)`` of ``/docs/<name>``, or None when there is no such file."""
    if name != SCRIPT_NAME and name not in _TYPES:
        return None  # checked before the cache: a client's names must not fill it
    return _load(name)


@cache
def _load(name: str) -> tuple[bytes, str, str]:
    if name == SCRIPT_NAME:
        body, content_type = SCRIPT.encode("utf-8"), "text/javascript; charset=utf-8"
    else:
        body, content_type = (resources.files(_PACKAGE) / "dist" / name).read_bytes(), _TYPES[name]
    return body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def is_public(path: str) -> bool:
    """True for the docs page and its assets (model-independent, served without a token)."""
    if path == "/docs":
        return True
    name = path[len(ASSET_PREFIX) :]
    return path.startswith(ASSET_PREFIX) and (name == SCRIPT_NAME or name in _TYPES)
