"""catwalk's log handler: a line at once, or, on a worker's loop, the lines of a turn together."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Iterator

import pytest

from catwalk.server.logs import LineHandler, write_once_per_turn


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
