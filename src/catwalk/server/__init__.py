"""Serving a loaded model over HTTP, a room per process role.

- the app and its routes (this folder): ``app`` (the Flask app factory, ``create_app``),
  ``envelope`` (``POST /predict``'s envelope, no HTTP), ``predict_route``, ``failures``,
  ``batching``, ``openapi``, ``docs``, ``v2_routes``; ``environ`` is what they share with the
  layers around them and with the worker;
- ``ops``: the layers around the app (auth, metrics, ``/ready``, the request log);
- ``logs``: the logger and its text and JSON formats;
- ``worker``: gunicorn's side in production (its entry point, hooks, catwalk's worker class);
- ``production``: the ``catwalk serve`` supervisor of nginx and gunicorn;
- ``dev``: ``serve --debug`` (the development server, the reloader).

Imports run one way (CONTRIBUTING.md, checked by tests/server/test_imports.py). Nothing here is
imported by ``catwalk --help``: the CLI imports these modules when a command needs them.
"""
