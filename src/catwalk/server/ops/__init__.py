"""Operations around the app: bearer auth, Prometheus metrics, ``/ready``, the request log.

WSGI layers put around whatever answers the model's routes (:mod:`.layers`), in every process
that serves the app: a production worker and the debug server alike.
"""
