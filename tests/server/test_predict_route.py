"""POST /predict answered before Flask (PredictRoute) says exactly what the Flask view says.

Each body goes once through the app as a client sends it (the fast route: Content-Length
given) and once with the same environ handed straight to the Flask side behind the route
(what happens to a chunked body): status, headers and body must be the same bytes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from catwalk.config import ServerSettings
from catwalk.model import LoadedModel
from catwalk.server.app import create_app
from catwalk.server.environ import REQUEST_ID_KEY
from catwalk.server.predict_route import PredictRoute

RNG_INPUT = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}


def environ(body: bytes, **extra: Any) -> dict[str, Any]:
    env = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/predict",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": io.StringIO(),
        REQUEST_ID_KEY: "nginx-id-1",  # a fixed id: generated ids would differ between runs
    }
    env.update(extra)
    return env


def call(app: Any, env: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    seen: list[Any] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        seen[:] = [status, list(headers)]

    body = b"".join(app(env, start_response))
    return seen[0], sorted(seen[1]), body


BODIES = [
    orjson.dumps({"input": RNG_INPUT}),
    orjson.dumps({"correlation_id": "mine", "input": RNG_INPUT, "extra_data": {"a": 1}}),
    b"{not json",
    b"[]",
    orjson.dumps({"input": {"seed": "zero"}}),
    orjson.dumps({"inputs": RNG_INPUT}),
    orjson.dumps({"input": RNG_INPUT, "model": {"name": "Other", "version": "1"}}),
    orjson.dumps({"correlation_id": "\n", "input": RNG_INPUT}),
]


@pytest.mark.parametrize("body", BODIES)
def test_fast_route_and_flask_view_give_the_same_answer(
    load: Callable[[str], LoadedModel], body: bytes
) -> None:
    app = create_app(load("rng"), ServerSettings())
    route = app.predict_route
    assert isinstance(route, PredictRoute)
    fast = call(route, environ(body))
    flask = call(route.other, environ(body))
    assert fast == flask
    # the whole app adds only the nosniff header around either
    status, headers, answer = call(app, environ(body))
    assert (status, [h for h in headers if h[0] != "X-Content-Type-Options"], answer) == fast


@pytest.mark.parametrize("name", ["raises", "bad_output", "numpy_output", "big_ints"])
def test_model_outcomes_are_the_same_on_both_paths(
    load: Callable[[str], LoadedModel], name: str
) -> None:
    model = load(name)
    x = model.load_test_data()[0][0]
    app = create_app(model, ServerSettings())
    body = orjson.dumps({"correlation_id": "same", "input": x})
    route = app.predict_route
    assert call(route, environ(body)) == call(route.other, environ(body))


def test_the_fast_route_logs_one_request_line(
    load: Callable[[str], LoadedModel], caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(load("rng"), ServerSettings())
    with caplog.at_level(logging.INFO, logger="catwalk.server"):
        status, _, _ = call(
            app, environ(orjson.dumps({"correlation_id": "c1", "input": RNG_INPUT}))
        )
    assert status == "200 OK"
    lines = [r.getMessage() for r in caplog.records if "/predict" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("POST /predict 200 ")
    assert "correlation_id=c1 request_id=nginx-id-1" in lines[0]


def test_what_the_route_does_not_answer_goes_to_flask(load: Callable[[str], LoadedModel]) -> None:
    app = create_app(load("rng"), ServerSettings(max_body_size="1k"))
    big = orjson.dumps({"input": RNG_INPUT, "extra_data": {"pad": "x" * 2000}})
    status, _, body = call(app, environ(big))
    assert status.startswith("413") and b"1k" in body
    status, _, _ = call(app, environ(b"", REQUEST_METHOD="GET", CONTENT_LENGTH=""))
    assert status.startswith("405")
    env = environ(orjson.dumps({"input": RNG_INPUT}))
    del env["CONTENT_LENGTH"]  # a chunked body: Flask reads it
    assert call(app, env)[0].startswith(("200", "400"))
