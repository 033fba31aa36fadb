"""The text log format of catwalk's server processes (``logging.format: text``, the default)::

2026-11-26 08:32:37,533 INFO [21227] catwalk.server: POST /predict 200 0.99ms correlation_id=...
"""

from __future__ import annotations

import logging
import time
from typing import Any

LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


class Formatter(logging.Formatter):
    """logging.Formatter with the date part of ``asctime`` computed once per second."""

    _second: int = -1
    _stamp: str = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self._asctime(record.created)

    def _asctime(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(created))
            self._second = second
        return f"{self._stamp},{int((created - second) * 1000):03d}"

    def request_line(
        self, created: float, name: str, pid: int, message: str, fields: dict[str, Any]
    ) -> str:
        """What :meth:`format` makes of an INFO record of ``LOG_FORMAT`` (the request log's
        way around the record: :func:`catwalk.server.logs.request_line_writer`)."""
        return LOG_FORMAT % {
            "asctime": self._asctime(created),
            "levelname": "INFO",
            "process": pid,
            "name": name,
            "message": message,
        }
