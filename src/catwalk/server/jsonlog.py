"""``logging.format: json``: every log line of a server is one JSON object.

:class:`JsonFormatter` writes catwalk's records (the request log, errors, the supervisor's and
gunicorn's messages) as one object per line::

    {"timestamp": "2026-12-02T03:10:00.123Z", "level": "INFO", "logger": "catwalk.server",
     "pid": 4242, "message": "POST /predict 200 0.41ms correlation_id=6f1c...",
     "model_name": "RNGModel", "model_version": "0.0.1", "method": "POST",
     "path": "/predict", "status": 200, "duration_ms": 0.41, "correlation_id": "6f1c..."}

A request line also has ``request_id`` (nginx's id) when it differs from the correlation id;
an error has its ``correlation_id`` and, with a traceback, ``exception``. Strings are JSON
strings, so a client's values cannot break a line.

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

# Set by the app factory: every line names the model it is about.
model_fields: dict[str, str] = {}
_LEVELS = {"debug": "DEBUG", "info": "INFO", "notice": "INFO", "warn": "WARNING",
           "error": "ERROR", "crit": "CRITICAL", "alert": "CRITICAL",
           "emerg": "CRITICAL"}  # fmt: skip
# 2026/12/02 03:10:00 [error] 1234#1234: *5 message
_NGINX = re.compile(r"^(\d{4})/(\d\d)/(\d\d) (\d\d:\d\d:\d\d) \[(\w+)\] (\d+)#\d+: (.*)$")


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    _second = -1
    _stamp = ""

    def _timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
            self._second = second
        return f"{self._stamp}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": self._timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
            **model_fields,
        }
        fields = request_fields(record)
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


def request_fields(record: logging.LogRecord) -> dict[str, Any] | None:
    """The fields of a request-log record (:class:`catwalk.server.logs.RequestLog`)."""
    from catwalk.server.logs import (
        _LINE,
        _LINE_MODEL,
        _LINE_WITH_REQUEST_ID,
        _LINE_WITH_REQUEST_ID_MODEL,
    )

    msg = record.msg
    with_model = msg is _LINE_MODEL or msg is _LINE_WITH_REQUEST_ID_MODEL
    if msg is not _LINE and msg is not _LINE_WITH_REQUEST_ID and not with_model:
        return None
    args: Any = record.args
    if not isinstance(args, tuple) or len(args) < 5:
        return None
    fields: dict[str, Any] = {
        "method": args[0],
        "path": args[1],
        "status": int(args[2]) if str(args[2]).isdigit() else args[2],
        "duration_ms": round(float(args[3]), 3),
        "correlation_id": args[4],
    }
    if msg is _LINE_WITH_REQUEST_ID or msg is _LINE_WITH_REQUEST_ID_MODEL:
        fields["request_id"] = args[5]
    if with_model:  # the model that answered, over the server's model_fields
        fields["model_name"], fields["model_version"] = args[-2], args[-1]
    return fields


def nginx_line(line: str) -> str:
    """A line nginx wrote on stderr, as one JSON object (JSON lines pass unchanged)."""
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
    return orjson.dumps({**out, **model_fields}).decode("utf-8")
