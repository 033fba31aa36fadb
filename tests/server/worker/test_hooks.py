"""gunicorn's hooks for catwalk's workers (worker/hooks.py), and how a worker's end passes
through the model's call: memory ceiling, a cut by a stop, gunicorn's timeout abort."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from catwalk.errors import ModelError, ProcessExit
from catwalk.model import LoadedModel
from catwalk.server.ops.request_log import InFlight
from catwalk.server.worker.hooks import recycle_if_over, resident_memory, worker_abort, worker_cut

Load = Callable[[str], LoadedModel]


class FakeWorker:
    alive = True


def test_a_worker_over_the_memory_ceiling_is_replaced(caplog: pytest.LogCaptureFixture) -> None:
    assert resident_memory() > 10 * 1024 * 1024
    below, above = FakeWorker(), FakeWorker()
    with caplog.at_level(logging.WARNING, logger="catwalk.server"):
        recycle_if_over(below, 1 << 40, "1024g")
        recycle_if_over(above, 1 << 20, "1m")
    assert below.alive is True and above.alive is False
    [message] = caplog.messages
    assert "more than server.max_worker_memory (1m): replacing it" in message


class CutWorker:
    """A batching worker with two requests of one batch in flight, one answered already."""

    def __init__(self) -> None:
        self.cut = InFlight({"REQUEST_METHOD": "POST", "PATH_INFO": "/predict"})
        self.cut.body_id = "slow-1"
        self.done = InFlight({"REQUEST_METHOD": "POST", "PATH_INFO": "/predict"})
        self.done.answered = True
        self.cut_reason = ""

    def in_flight(self) -> list[InFlight]:
        return [self.cut, self.done]


def test_a_request_cut_by_shutdown_is_logged_as_cut(caplog: pytest.LogCaptureFixture) -> None:
    worker = CutWorker()
    with caplog.at_level(logging.ERROR, logger="catwalk.server"):
        worker_cut(worker, 30)
    [message] = caplog.messages
    assert "request cut unanswered" in message and "graceful_timeout (30 s)" in message
    assert "POST /predict correlation_id=slow-1" in message
    assert "graceful_timeout (30 s)" in worker.cut_reason  # what the 503 says
    caplog.clear()
    worker = CutWorker()
    worker.cut.answered = True
    worker_cut(worker, 30)  # both answered: nothing to say, no reason given
    assert caplog.messages == []
    assert worker.cut_reason == ""


@pytest.fixture
def abort_signal() -> Iterator[None]:
    """SIGALRM raises ProcessExit, as catwalk's worker does on gunicorn's SIGABRT."""

    def abort(signum: int, frame: Any) -> None:
        raise ProcessExit(1)

    previous = signal.signal(signal.SIGALRM, abort)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_a_models_sys_exit_is_a_model_error_but_an_abort_ends_the_call(
    load: Load, abort_signal: None, caplog: pytest.LogCaptureFixture
) -> None:
    model = load("raises")
    with pytest.raises(ModelError, match="predict raised SystemExit: 3"):
        model.predict({"x": 1, "label": "exit"})
    # gunicorn aborts the worker while the model runs: its exit passes through the call.
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    with pytest.raises(ProcessExit):
        model.call(time.sleep, 5)
    first = InFlight({"REQUEST_METHOD": "POST", "PATH_INFO": "/predict",
                      "catwalk.request_id": "r-1"})  # fmt: skip
    first.body_id = "c-1"
    second = InFlight({"REQUEST_METHOD": "POST", "PATH_INFO": "/predict",
                       "HTTP_X_CORRELATION_ID": "c-2", "catwalk.request_id": "r-2"})  # fmt: skip

    class Worker:  # a batching worker answering two requests of one batch
        def in_flight(self) -> list[InFlight]:
            return [first, second]

    with caplog.at_level(logging.ERROR, logger="catwalk.server"):
        worker_abort(Worker(), 30)
    assert len(caplog.messages) == 2
    assert all("server.timeout (30 s)" in message for message in caplog.messages)
    assert "POST /predict correlation_id=c-1 request_id=r-1" in caplog.messages[0]
    assert "POST /predict correlation_id=c-2 request_id=r-2" in caplog.messages[1]
    with pytest.raises(ModelError, match="predict raised SystemExit: 3"):  # still the model's
        model.predict({"x": 1, "label": "exit"})
