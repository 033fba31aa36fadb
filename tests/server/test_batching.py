"""Adaptive micro-batching in the server: concurrent requests, one model call, own answers.

The requests are sent from threads straight into the app's Predictor (as the threaded debug
server does), so these tests see the collector's real concurrency without sockets; the
production collector, on an event loop with a greenlet per request, is tested below, and
tests/server/production/test_batching_serve.py sends requests through nginx to it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest
from greenlet import greenlet

from catwalk.config import BatchingSettings, ServerSettings
from catwalk.errors import ModelTimeout, OutputError
from catwalk.model import LoadedModel
from catwalk.server.app import create_app
from catwalk.server.batching import Batcher
from catwalk.server.envelope import PredictFailed, Predictor
from catwalk.spec import Batching

Answer = tuple[int, dict[str, Any]]


def predictor(model: LoadedModel, **settings: Any) -> Predictor:
    app = create_app(model, ServerSettings(**settings))
    assert app.predictor.batcher is not None
    return app.predictor


def ask(p: Predictor, envelope: dict[str, Any]) -> Answer:
    try:
        _, body = p.handle(orjson.dumps(envelope))
    except PredictFailed as exc:
        return exc.error.status, {"correlation_id": exc.correlation_id, "message": str(exc)}
    return 200, orjson.loads(body)


def together(p: Predictor, envelopes: list[dict[str, Any]]) -> list[Answer]:
    """Send every envelope at once, each from its own thread, released by one barrier."""
    barrier = threading.Barrier(len(envelopes))

    def send(envelope: dict[str, Any]) -> Answer:
        barrier.wait()
        return ask(p, envelope)

    with ThreadPoolExecutor(len(envelopes)) as pool:
        return list(pool.map(send, envelopes))


def test_concurrent_requests_share_a_batch_and_get_their_own_answers(
    load: Callable[[str], LoadedModel],
) -> None:
    model = load("batcher")
    p = predictor(model)
    envelopes = [{"correlation_id": f"req-{i}", "input": {"x": i}} for i in range(24)]
    answers = together(p, envelopes)
    assert len(answers) == 24
    for i, (status, body) in enumerate(answers):
        assert status == 200, body
        assert body["correlation_id"] == f"req-{i}"
        assert body["input"] == {"x": i}
        assert body["output"] == {"y": 2.0 * i}
    sizes = model.instance.sizes
    assert sum(sizes) == 24 and max(sizes) <= 8  # max_batch_size
    assert max(sizes) > 1, sizes  # requests really were joined
    assert p.batcher is not None
    stats = p.batcher.stats()
    assert stats["requests"] == 24 and stats["batches"] == len(sizes)
    assert sum(size * n for size, n in stats["sizes"].items()) == 24


def test_a_bad_request_gets_its_own_400_and_never_fails_its_neighbours(
    load: Callable[[str], LoadedModel],
) -> None:
    p = predictor(load("batcher"))
    envelopes: list[dict[str, Any]] = [{"input": {"x": i}} for i in range(6)]
    envelopes[2] = {"correlation_id": "bad", "input": {"x": "two"}}
    answers = together(p, envelopes)
    assert answers[2][0] == 400 and answers[2][1]["correlation_id"] == "bad"
    assert "input.x" in answers[2][1]["message"] or "x" in answers[2][1]["message"]
    assert [a[0] for i, a in enumerate(answers) if i != 2] == [200] * 5


def test_an_output_failing_the_schema_fails_only_its_request(
    load: Callable[[str], LoadedModel],
) -> None:
    p = predictor(load("batcher"))
    envelopes: list[dict[str, Any]] = [{"input": {"x": i}} for i in range(6)]
    envelopes[1] = {"correlation_id": "bad-out", "input": {"x": 1, "do": "bad_output"}}
    envelopes[4] = {"correlation_id": "inf-out", "input": {"x": 4, "do": "inf"}}
    answers = together(p, envelopes)
    assert answers[1][0] == 500 and "output" in answers[1][1]["message"]
    assert answers[4][0] == 500 and "cannot be represented" in answers[4][1]["message"]
    assert [answers[i][0] for i in (0, 2, 3, 5)] == [200] * 4


def test_one_bad_request_in_32_fails_alone_and_its_batch_mates_are_answered(
    load: Callable[[str], LoadedModel],
) -> None:
    model = load("batcher")
    p = predictor(model)
    envelopes: list[dict[str, Any]] = [
        {"correlation_id": f"req-{i}", "input": {"x": i}} for i in range(32)
    ]
    envelopes[5]["input"]["do"] = "raise"  # predict_batch raises for any batch holding it
    answers = together(p, envelopes)
    failed = [i for i, (status, _) in enumerate(answers) if status != 200]
    assert failed == [5], answers
    status, body = answers[5]
    assert status == 500 and body["correlation_id"] == "req-5"
    assert body["message"] == "predict_batch raised ValueError: asked to raise"
    for i, (_, body) in enumerate(answers):
        if i != 5:
            assert body["correlation_id"] == f"req-{i}" and body["output"] == {"y": 2.0 * i}
    assert max(model.instance.sizes) > 1  # they did meet in batches first
    assert p.batcher is not None and p.batcher.stats()["failed_batches"] >= 1
    # The server goes on: the next batch is answered.
    again = together(p, [{"input": {"x": 7}}, {"input": {"x": 8}}])
    assert [(a[0], a[1]["output"]) for a in again] == [(200, {"y": 14.0}), (200, {"y": 16.0})]


def test_a_wrong_number_of_outputs_fails_that_batch_with_a_clear_500(
    load: Callable[[str], LoadedModel],
) -> None:
    p = predictor(load("batcher"))
    envelopes: list[dict[str, Any]] = [{"input": {"x": i, "do": "short"}} for i in range(3)]
    answers = together(p, envelopes)
    assert len(answers) == 3
    for status, body in answers:
        assert status == 500
        assert "predict_batch returned" in body["message"]
        assert "outputs for" in body["message"]


def test_a_request_not_answered_within_the_timeout_gets_504(
    load: Callable[[str], LoadedModel],
) -> None:
    p = predictor(load("batcher"), timeout=1)
    status, body = ask(p, {"correlation_id": "slow", "input": {"x": 3, "do": "sleep"}})
    assert status == 504 and body["correlation_id"] == "slow"
    assert "server.timeout" in body["message"]


def test_a_lone_request_does_not_wait_for_max_latency(load: Callable[[str], LoadedModel]) -> None:
    import time

    p = predictor(load("batcher"), batching=BatchingSettings(max_latency_ms=2000))
    ask(p, {"input": {"x": 0}})  # starts the collector
    started = time.monotonic()
    assert ask(p, {"input": {"x": 1}})[0] == 200
    assert time.monotonic() - started < 1.0


def test_application_yml_can_turn_batching_off(load: Callable[[str], LoadedModel]) -> None:
    app = create_app(load("batcher"), ServerSettings(batching=BatchingSettings(enabled=False)))
    assert app.predictor.batcher is None


def test_application_yml_overrides_the_numbers(load: Callable[[str], LoadedModel]) -> None:
    model = load("batcher")
    p = predictor(model, batching=BatchingSettings(max_batch_size=2))
    together(p, [{"input": {"x": i}} for i in range(6)])
    assert max(model.instance.sizes) <= 2


def test_unbatched_models_get_no_batcher(load: Callable[[str], LoadedModel]) -> None:
    assert create_app(load("rng"), ServerSettings()).predictor.batcher is None


def test_dataframe_requests_are_joined_and_split_back_in_order(
    load: Callable[[str], LoadedModel],
) -> None:
    model = load("dataframe")
    single = Predictor(model)
    p = predictor(model)
    inputs: list[Any] = [{"x1": i, "x2": -i, "x3": 0.5} for i in range(8)]
    inputs[3] = [{"x1": 1, "x2": 2, "x3": 3}, {"x1": -1, "x2": 0, "x3": 9}]  # two records
    answers = together(p, [{"input": x} for x in inputs])
    for x, (status, body) in zip(inputs, answers, strict=True):
        assert status == 200, body
        assert body["input"] == x
        assert (
            body["output"] == orjson.loads(single.handle(orjson.dumps({"input": x}))[1])["output"]
        )
    assert isinstance(answers[3][1]["output"], list) and len(answers[3][1]["output"]) == 2


def test_batcher_unit_counts_and_timeouts() -> None:
    calls: list[list[Any]] = []

    def run(inputs: list[Any]) -> list[Any]:
        calls.append(inputs)
        return [OutputError("no") if x == "bad" else x * 2 for x in inputs]

    b = Batcher(run, Batching(max_batch_size=3, max_latency_ms=1), timeout=5)
    assert b.submit(2) == 4
    with pytest.raises(OutputError):
        b.submit("bad")
    assert b.stats()["batches"] == 2
    assert isinstance(ModelTimeout("x").status, int) and ModelTimeout("x").status == 504


def test_on_an_event_loop_requests_in_greenlets_meet_in_batches() -> None:
    """The production collector (catwalk.server.worker.loop_worker): one thread, greenlets."""
    calls: list[list[Any]] = []

    def run(inputs: list[Any]) -> list[Any]:
        calls.append(list(inputs))
        return [OutputError("no") if x == "bad" else x * 2 for x in inputs]

    loop = asyncio.new_event_loop()
    half_read = [0]
    gap = 0.01  # ARRIVAL_GAP, larger: the loop's timers are only as fine as a millisecond
    b = Batcher(run, Batching(max_batch_size=4, max_latency_ms=50), timeout=5, arrival_gap=gap)
    b.attach(loop, lambda: half_read[0])
    results: dict[Any, Any] = {}

    def request(x: Any) -> None:
        try:
            results[x] = b.submit(x)
        except OutputError as exc:
            results[x] = str(exc)

    def arrive(*xs: Any) -> None:  # requests read in one turn of the loop
        for x in xs:
            greenlet(request).switch(x)

    def turn(seconds: float = 0.005) -> None:
        loop.run_until_complete(asyncio.sleep(seconds))

    try:
        loop.call_soon(arrive, 1)  # a lone request (the last batch had 1): at once
        turn()
        assert calls == [[1]] and results == {1: 2}
        # Timed from before the arrival: the gap runs from the last request's arrival, which
        # happens inside the next turn of the loop.
        started = time.monotonic()
        loop.call_soon(arrive, 2, 3, 4, 5, 6, "bad")  # max_batch_size first, in order
        turn(0.001)
        assert calls[1] == [2, 3, 4, 5] and "bad" not in results
        # The last batch had 4: two waiting are not enough at once, but when no other
        # request arrives for ARRIVAL_GAP, they leave (long before max_latency_ms).
        assert len(calls) == 2
        while "bad" not in results:
            turn(0.0005)
        waited = time.monotonic() - started
        assert gap * 0.9 <= waited < 0.04, waited
        assert calls[2] == [6, "bad"] and results[6] == 12 and results["bad"] == "no"
        # A request half read holds a batch back until it arrives, or max_latency_ms.
        half_read[0] = 1
        loop.call_soon(arrive, 7, 8)
        turn(0.03)
        assert len(calls) == 3  # the last batch had 2, but a third is on its way
        half_read[0] = 0
        loop.call_soon(arrive, 9)
        turn()
        assert calls[3] == [7, 8, 9]
        half_read[0] = 1  # never arrives: max_latency_ms (50) after the oldest
        started = time.monotonic()
        loop.call_soon(arrive, 11)
        while 11 not in results:
            turn(0.002)
        assert 0.045 <= time.monotonic() - started < 0.5
        half_read[0] = 0
        # From the loop's own greenlet (no request greenlet): a batch of one, at once.
        assert b.submit(10) == 20 and calls[5] == [10]
        assert b.stats()["batches"] == 6 and b.stats()["requests"] == 12
    finally:
        loop.close()
