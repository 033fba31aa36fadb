"""The operational layers around the app: ``/ready`` (the app's readiness), GET-only ``/ready``
and ``/metrics``, and ``X-Content-Type-Options: nosniff`` on every answer (test client)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask.testing import FlaskClient
from ops_answers import RNG_INPUT, error

from catwalk.config import ServerSettings
from catwalk.model import LoadedModel
from catwalk.server.app import create_app


def test_ready_is_200_once_built_and_503_while_warming_up_or_from_a_stop(
    load: Callable[[str], LoadedModel], tmp_path: Path
) -> None:
    app = create_app(load("rng"), ServerSettings())  # building the app loads the model: ready
    client = app.test_client()
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready"}
    app.readiness.warming = True  # production: the worker predicts its warm-up examples
    assert "warming up" in error(client.get("/ready"), 503)
    app.readiness.warming = False
    app.readiness.stop_file = str(tmp_path / "stopping")
    assert client.get("/ready").status_code == 200
    (tmp_path / "stopping").touch()  # what the production supervisor does on SIGTERM
    assert "stopping" in error(client.get("/ready"), 503)
    assert client.get("/status").status_code == 200  # liveness is not readiness
    assert client.post("/predict", json={"input": RNG_INPUT}).status_code == 200


def test_ready_and_metrics_take_only_get(make_client: Callable[..., FlaskClient]) -> None:
    client = make_client("rng")
    for path in ("/ready", "/metrics"):
        response = client.post(path)
        assert "method not allowed" in error(response, 405)
        assert response.headers["Allow"] == "GET, HEAD"


def test_every_answer_of_the_app_says_nosniff(make_client: Callable[..., FlaskClient]) -> None:
    client = make_client("rng")
    answers = [
        client.get("/status"),
        client.post("/predict", json={"input": {"seed": 0}}),  # 400
        client.get("/nowhere"),  # 404
        client.get("/metrics"),
    ]
    assert [a.status_code for a in answers] == [200, 400, 404, 200]
    for answer in answers:
        assert answer.headers.getlist("X-Content-Type-Options") == ["nosniff"]
