"""``catwalk serve``'s production mode: the supervisor of nginx and gunicorn.

The supervisor (:mod:`.supervisor`) checks what it needs first (:mod:`.preflight`), renders
both configurations (:mod:`.render`, ``templates/``), starts and stops its children
(:mod:`.children`). It never imports the gunicorn side or the app: it names them by string
(``python -m catwalk.server.worker.wsgi``, gunicorn's ``worker_class``, the app factory) and
talks to them through the run folder, signals and sockets.
"""
