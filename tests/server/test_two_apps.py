"""Two apps in one process share nothing: readiness, batching collector, metrics, the model.

Everything an app needs lives on the app (``ModelApp``): no module global of the server holds
a readiness flag, a batcher or the model's name for the logs, and building an app leaves the
model object as it is (its timing for /metrics is the app's own call around it).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from catwalk.config import ServerSettings
from catwalk.model import LoadedModel
from catwalk.server.app import create_app
from catwalk.server.logs.jsonlog import JsonFormatter

RNG_INPUT = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}


def predicts_counted(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "catwalk_requests_total" and sample.labels == {
                "endpoint": "/predict",
                "status": "200",
            }:
                return sample.value
    return 0.0


def test_apps_are_independent(load: Callable[[str], LoadedModel]) -> None:
    rng = create_app(load("rng"), ServerSettings()).test_client()
    echo = create_app(load("echo"), ServerSettings()).test_client()
    assert rng.get("/info").get_json()["name"] == "RNGModel"
    assert echo.get("/info").get_json()["name"] == "Echo"


def test_two_apps_on_one_model_share_no_state(load: Callable[[str], LoadedModel]) -> None:
    model = load("rng")
    first, second = create_app(model, ServerSettings()), create_app(model, ServerSettings())
    # The model object is left as it is: no app wraps its predict in place.
    assert "predict" not in vars(model)
    assert first.predictor.predict is not second.predictor.predict
    one, two = first.test_client(), second.test_client()
    assert first.readiness is not second.readiness
    first.readiness.stopping = True
    assert one.get("/ready").status_code == 503
    assert two.get("/ready").status_code == 200
    assert two.get("/v2/health/ready").get_json() == {"ready": True}
    for _ in range(3):
        assert one.post("/predict", json={"input": RNG_INPUT}).status_code == 200
    assert two.post("/predict", json={"input": RNG_INPUT}).status_code == 200
    assert predicts_counted(one.get("/metrics").get_data(as_text=True)) == 3
    assert predicts_counted(two.get("/metrics").get_data(as_text=True)) == 1


def test_each_app_runs_only_its_own_batching_collector(load: Callable[[str], LoadedModel]) -> None:
    first = create_app(load("batcher"), ServerSettings())
    second = create_app(load("batcher"), ServerSettings())
    unbatched = create_app(load("rng"), ServerSettings())
    assert first.predictor.batcher is not None and second.predictor.batcher is not None
    assert first.predictor.batcher is not second.predictor.batcher
    loop = asyncio.new_event_loop()
    try:
        assert first.attach_loop(loop, lambda: 0) is True  # what catwalk's worker calls
        assert first.predictor.batcher._loop is loop
        assert second.predictor.batcher._loop is None  # not put on another app's loop
        assert unbatched.attach_loop(loop, lambda: 0) is False  # one request at a time
    finally:
        loop.close()
    # The second app still batches in its own (threaded) way, untouched by the first.
    answer = second.test_client().post("/predict", json={"input": {"x": 2}})
    assert answer.status_code == 200 and answer.get_json()["output"] == {"y": 4.0}


def test_building_an_app_leaves_the_process_logging_alone(
    load: Callable[[str], LoadedModel],
) -> None:
    create_app(load("rng"), ServerSettings())
    record = logging.LogRecord("catwalk.server", logging.INFO, __file__, 1, "hello", None, None)
    line = json.loads(JsonFormatter().format(record))
    assert "model_name" not in line  # only the process that serves it names the model
