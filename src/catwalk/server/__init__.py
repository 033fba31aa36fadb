"""Serving a loaded model over HTTP.

- ``envelope``: the ``POST /predict`` request/response envelope, without any HTTP framework;
- ``app``: the Flask app factory (``create_app``), its routes and the one JSON error handler;
- ``logs``: the per-request log line and the log format;
- ``production``/``wsgi``: nginx in front of gunicorn (production mode).

Nothing here is imported by ``catwalk --help``: the CLI imports these modules when a command
needs them.
"""
