"""catwalk's log handler: a line at once, or, on a worker's loop, the lines of a turn together."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import threading
from collections.abc import Iterator

import pytest

from catwalk.server.logs import LineHandler, request_line_writer, write_once_per_turn
from catwalk.server.logs.jsonlog import JsonFormatter
from catwalk.server.logs.text import LOG_FORMAT, Formatter


class Writes(io.StringIO):
    """A stream that records each write() it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def handler() -> Iterator[tuple[LineHandler, Writes, logging.Logger]]:
    handler = LineHandler()
    handler._catwalk = True  # type: ignore[attr-defined]
    stream = Writes()
    handler.setStream(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = [handler]
    log = logging.getLogger("catwalk.test_line_handler")
    log.setLevel(logging.INFO)
    yield handler, stream, log
    root.handlers[:] = saved


def test_without_a_loop_each_line_is_written_at_once(
    handler: tuple[LineHandler, Writes, logging.Logger],
) -> None:
    _, stream, log = handler
    log.info("one")
    log.info("two")
    assert stream.writes == ["INFO one\n", "INFO two\n"]


def test_on_a_loop_the_lines_of_a_turn_are_written_together_warnings_at_once(
    handler: tuple[LineHandler, Writes, logging.Logger],
) -> None:
    _, stream, log = handler
    loop = asyncio.new_event_loop()
    try:
        flush = write_once_per_turn(loop)

        def turn() -> None:
            log.info("a")
            log.info("b")
            assert stream.writes == []  # gathered until the loop's next turn
            log.warning("c")  # at once, after those before it
            assert stream.getvalue() == "INFO a\nINFO b\nWARNING c\n"
            log.info("d")
            loop.call_soon(loop.stop)  # after the write "d" asked for

        loop.call_soon(turn)
        loop.run_forever()
        assert stream.getvalue() == "INFO a\nINFO b\nWARNING c\nINFO d\n"
        assert len(stream.writes) == 2  # "a b c" in one write, "d" in another

        # A line from another thread (a model's) wakes the loop to write it.
        thread = threading.Thread(target=log.info, args=("from a thread",))
        loop.call_soon(thread.start)
        loop.call_later(0.2, loop.stop)
        loop.run_forever()
        thread.join()
        assert stream.getvalue().endswith("INFO from a thread\n")

        log.info("at exit")
        flush()
        assert stream.getvalue().endswith("INFO at exit\n")
    finally:
        loop.close()


@pytest.mark.parametrize("formatter", [Formatter(LOG_FORMAT), JsonFormatter({"model_name": "m"})])
def test_a_request_line_written_without_a_record_reads_as_the_records_line(
    formatter: logging.Formatter,
) -> None:
    fields = {"method": "POST", "path": "/predict", "status": 200, "correlation_id": "c-1"}
    message = "POST /predict 200 0.41ms correlation_id=c-1"
    record = logging.LogRecord("catwalk.server", logging.INFO, __file__, 0, message, None, None)
    record.request_fields = fields
    record.created = 1_800_000_000.0427  # a stamp the millisecond part of which shows
    record.msecs = int((record.created - int(record.created)) * 1000) + 0.0
    assert isinstance(formatter, Formatter | JsonFormatter)
    direct = formatter.request_line(
        record.created, record.name, record.process or 0, message, fields
    )
    assert direct == formatter.format(record)
    assert ",042 INFO" in direct or '.042Z"' in direct


def test_request_lines_bypass_the_record_only_where_nothing_else_would_see_it(
    handler: tuple[LineHandler, Writes, logging.Logger],
) -> None:
    line_handler, stream, log = handler
    line_handler.setFormatter(Formatter(LOG_FORMAT))
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = [line_handler]  # pytest's own capturing handler joined it meanwhile
    assert request_line_writer(log) is None  # no loop gathers the lines: the record's way
    loop = asyncio.new_event_loop()
    try:
        write_once_per_turn(loop)
        assert request_line_writer(log) == line_handler.request_line
        write = request_line_writer(log)
        assert write is not None
        write(log.name, "POST /predict 200 0.41ms correlation_id=c-1", {})
        line_handler.flush()
        assert stream.getvalue().endswith(
            f"INFO [{os.getpid()}] {log.name}: POST /predict 200 0.41ms correlation_id=c-1\n"
        )

        # Anything else that would see the record (a filter, e.g. tracing's, another handler,
        # a format of the user's) takes it the record's way.
        accept_all = logging.Filter()
        for owner in (log, logging.getLogger("catwalk"), line_handler):
            owner.addFilter(accept_all)
            assert request_line_writer(log) is None
            owner.removeFilter(accept_all)
        for logger in (log, logging.getLogger()):
            other = logging.NullHandler()
            logger.addHandler(other)
            assert request_line_writer(log) is None
            logger.removeHandler(other)
        log.propagate = False
        assert request_line_writer(log) is None
        log.propagate = True
        line_handler.setFormatter(Formatter("%(message)s"))
        assert request_line_writer(log) is None
        line_handler.setFormatter(JsonFormatter())
        assert request_line_writer(log) == line_handler.request_line
    finally:
        root.handlers[:] = saved
        line_handler.defer = None
        loop.close()
