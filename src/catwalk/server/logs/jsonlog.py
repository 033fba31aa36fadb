"""``logging.format: json``: every log line of a server is one JSON object.

:class:`JsonFormatter` writes catwalk's records (the request log, errors, the supervisor's and
gunicorn's messages) as one object per line::

    {"timestamp": "2026-12-02T03:10:00.123Z", "level": "INFO", "logger": "catwalk.server",
     "pid": 4242, "message": "POST /predict 200 0.41ms correlation_id=6f1c...",
     "model_name": "RNGModel", "model_version": "0.0.1", "method": "POST",
     "path": "/predict", "status": 200, "duration_ms": 0.41, "correlation_id": "6f1c..."}

A request line's fields come on its record (``request_fields``, set by the request log,
:mod:`catwalk.server.ops.request_log`), with ``request_id`` (nginx's id) when it differs from
the correlation id; an error has its ``correlation_id`` and, with a traceback, ``exception``.
Strings are JSON strings, so a client's values cannot break a line. The model's name and
version are the formatter's own (:attr:`JsonFormatter.model_fields`, set once the process
knows the model: :func:`catwalk.server.logs.name_the_model`).

:func:`nginx_line` turns a line of nginx's own error log (plain text by design) into the
same shape (``"source": "nginx"``); production mode pipes nginx's stderr through it. Lines
that already are JSON (nginx's log of the errors it answers itself) pass unchanged.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import orjson

_LEVELS = {"debug": "DEBUG", "info": "INFO", "notice": "INFO", "warn": "WARNING",
           "error": "ERROR", "crit": "CRITICAL", "alert": "CRITICAL",
           "emerg": "CRITICAL"}  # fmt: skip
# 2026/12/02 03:10:00 [error] 1234#1234: *5 message
_NGINX = re.compile(r"^(\d{4})/(\d\d)/(\d\d) (\d\d:\d\d:\d\d) \[(\w+)\] (\d+)#\d+: (.*)$")


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    _second = -1
    _stamp = ""

    def __init__(self, model_fields: dict[str, str] | None = None) -> None:
        super().__init__()
        # model_name and model_version, in every line once the process knows the model.
        self.model_fields: dict[str, str] = dict(model_fields or {})

    def _timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
            self._second = second
        return f"{self._stamp}.{int((created - second) * 1000):03d}Z"

    def request_line(
        self, created: float, name: str, pid: int, message: str, fields: dict[str, Any]
    ) -> str:
        """What :meth:`format` makes of an INFO record with these ``request_fields`` (the
        request log's way around the record: :func:`catwalk.server.logs.request_line_writer`)."""
        out = self._line(created, "INFO", name, pid, message)
        out.update(fields)
        return orjson.dumps(out, default=str).decode("utf-8")

    def _line(
        self, created: float, level: str, name: str, pid: int | None, message: str
    ) -> dict[str, Any]:
        """The fields every line has, the model's included."""
        return {
            "timestamp": self._timestamp(created),
            "level": level,
            "logger": name,
            "pid": pid,
            "message": message,
            **self.model_fields,
        }

    def format(self, record: logging.LogRecord) -> str:
        out = self._line(
            record.created, record.levelname, record.name, record.process, record.getMessage()
        )
        fields = getattr(record, "request_fields", None)
        if fields:
            out.update(fields)
        correlation_id = getattr(record, "correlation_id", None)
        if correlation_id is not None:
            out["correlation_id"] = correlation_id
            message = out["message"]
            if message.startswith("correlation_id="):  # the text format's prefix: a field here
                out["message"] = message.partition(" ")[2]
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode("utf-8")


def nginx_line(line: str, model_fields: dict[str, str] | None = None) -> str:
    """A line nginx wrote on stderr, as one JSON object (JSON lines pass unchanged), naming
    the model served (``model_fields``: model_name, model_version)."""
    text = line.rstrip("\r\n")
    if text.startswith("{"):
        return text
    match = _NGINX.match(text)
    out: dict[str, Any]
    if match:
        year, month, day, clock, level, pid, message = match.groups()
        # nginx writes local time; catwalk's servers run in UTC containers, and the offset
        # is added so that the stamp stays exact elsewhere too.
        offset = time.strftime("%z")
        out = {
            "timestamp": f"{year}-{month}-{day}T{clock}{offset[:3]}:{offset[3:]}",
            "level": _LEVELS.get(level, level.upper()),
            "logger": "nginx",
            "source": "nginx",
            "pid": int(pid),
            "message": message,
        }
    else:
        out = {"level": "INFO", "logger": "nginx", "source": "nginx", "message": text}
    return orjson.dumps({**out, **(model_fields or {})}).decode("utf-8")
