"""The gunicorn side of production mode: its entry point, hooks and catwalk's worker class.

``python -m catwalk.server.worker.wsgi RUN_DIR`` is the gunicorn master the supervisor starts
(:mod:`.wsgi`); each worker is a :class:`.loop_worker.LoopWorker` (an event loop, its HTTP
connections in :mod:`.http_conn` and :mod:`.socket_transport`, requests and answers in
:mod:`.http_message`), warmed up (:mod:`.warmup`) before it accepts. It loads the app by its
factory's name (``Job.app_factory``).
"""
