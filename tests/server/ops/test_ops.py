"""/ready, /metrics and bearer-token auth: the WSGI pieces around the app (test client)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from catwalk.config import AuthSettings, ServerSettings, load_settings
from catwalk.errors import ConfigError
from catwalk.model import LoadedModel
from catwalk.server.app import create_app
from catwalk.server.ops import auth

RNG_INPUT = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}
TOKEN = "t0k-EN_abc.123~/+="


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def error(response: Any, status: int) -> str:
    assert response.status_code == status, response.data
    assert response.content_type == "application/json"
    body = response.get_json()
    assert set(body) == {"correlation_id", "output"}
    message: str = body["output"]["message"]
    return message


# -- /ready ----------------------------------------------------------------------------------


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


# -- /metrics --------------------------------------------------------------------------------


def test_metrics_count_requests_and_time_the_model(
    make_client: Callable[..., FlaskClient],
) -> None:
    client = make_client("rng")
    for _ in range(3):
        assert client.post("/predict", json={"input": RNG_INPUT}).status_code == 200
    assert client.post("/predict", json={"input": {}}).status_code == 400
    assert client.get("/nope/../x").status_code == 404
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    found = samples(response.get_data(as_text=True))
    requests_total = "catwalk_requests_total"
    assert found[(requests_total, (("endpoint", "/predict"), ("status", "200")))] == 3
    assert found[(requests_total, (("endpoint", "/predict"), ("status", "400")))] == 1
    assert found[(requests_total, (("endpoint", "other"), ("status", "404")))] == 1
    duration = "catwalk_request_duration_seconds_count"
    assert found[(duration, (("endpoint", "/predict"),))] == 4
    assert found[("catwalk_predict_duration_seconds_count", ())] == 3  # 400s never reach it
    assert found[("catwalk_model_info", (("name", "RNGModel"), ("version", "0.0.1")))] == 1
    assert found[("catwalk_in_flight_requests", ())] == 1  # this very /metrics request
    assert found[("catwalk_batch_size_count", ())] == 0


def test_a_batching_models_batches_feed_the_batch_size_histogram(
    load: Callable[[str], LoadedModel],
) -> None:
    app = create_app(load("batcher"), ServerSettings())
    client = app.test_client()
    for x in range(3):  # one at a time: three batches of one
        assert client.post("/predict", json={"input": {"x": x}}).status_code == 200
    found = samples(client.get("/metrics").get_data(as_text=True))
    assert found[("catwalk_batch_size_count", ())] == 3
    assert found[("catwalk_batch_size_bucket", (("le", "1.0"),))] == 3
    assert found[("catwalk_predict_duration_seconds_count", ())] == 3  # one model call each


def test_metrics_can_be_turned_off(make_client: Callable[..., FlaskClient]) -> None:
    client = make_client("rng", metrics=False)
    assert client.get("/metrics").status_code == 404
    assert client.post("/predict", json={"input": RNG_INPUT}).status_code == 200


# -- bearer tokens ---------------------------------------------------------------------------


def tokens_file(folder: Path, *tokens: str, mode: int = 0o600) -> Path:
    file = folder / "tokens.txt"
    file.write_text("# catwalk tokens\n\n" + "\n".join(tokens) + "\n")
    file.chmod(mode)
    return file


@pytest.fixture
def protected(load: Callable[[str], LoadedModel], tmp_path: Path) -> FlaskClient:
    settings = ServerSettings(auth=AuthSettings(tokens_file=tokens_file(tmp_path, TOKEN)))
    return create_app(load("rng"), settings).test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_every_endpoint_but_status_and_ready_needs_a_token(protected: FlaskClient) -> None:
    for method, path in [
        ("POST", "/predict"),
        ("GET", "/info"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/no-such-path"),
    ]:
        response = protected.open(path, method=method, json={"input": RNG_INPUT})
        assert "unauthorized: missing" in error(response, 401), path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert protected.get("/status").status_code == 200
    assert protected.get("/ready").status_code == 200
    assert protected.get("/docs").status_code == 200  # static, model-free: the page asks
    assert protected.get("/docs/swagger-ui.css").status_code == 200
    response = protected.post("/predict", json={"input": RNG_INPUT}, headers=bearer(TOKEN))
    assert response.status_code == 200
    assert protected.get("/info", headers=bearer(TOKEN)).status_code == 200
    assert protected.get("/metrics", headers=bearer(TOKEN)).status_code == 200


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("Bearer wrong", "invalid bearer token"),
        (f"Bearer {TOKEN}x", "invalid bearer token"),
        (f"Bearer {TOKEN[:-1]}", "invalid bearer token"),
        (f"Basic {TOKEN}", "malformed"),
        ("Bearer", "malformed"),
        ("Bearer   ", "malformed"),
        (TOKEN, "malformed"),
    ],
)
def test_a_wrong_or_malformed_token_is_401(protected: FlaskClient, header: str, why: str) -> None:
    response = protected.get("/info", headers={"Authorization": header})
    assert why in error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in response.get_data(as_text=True)


def test_tokens_are_never_logged(protected: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("DEBUG"):
        protected.get("/info", headers=bearer(TOKEN))
        protected.get("/info", headers=bearer("wrong-" + TOKEN))
        protected.post("/predict", json={"input": {}}, headers=bearer(TOKEN))
    assert caplog.records
    assert TOKEN not in caplog.text


def test_the_tokens_file_is_rotated_without_a_restart(
    load: Callable[[str], LoadedModel], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tokens_file(tmp_path, "old-token")
    client = create_app(
        load("rng"), ServerSettings(auth=AuthSettings(tokens_file=file))
    ).test_client()
    assert client.get("/info", headers=bearer("old-token")).status_code == 200
    monkeypatch.setattr(auth, "RECHECK_SECONDS", 0.0)
    tokens_file(tmp_path, "old-token", "new-token")
    assert client.get("/info", headers=bearer("new-token")).status_code == 200
    tokens_file(tmp_path, "new-token")
    os.utime(file, (time.time() + 5, time.time() + 5))  # a new mtime even on a coarse clock
    assert client.get("/info", headers=bearer("old-token")).status_code == 401
    assert client.get("/info", headers=bearer("new-token")).status_code == 200
    file.chmod(0o644)  # a mistake: the last good tokens stay in force, and it is logged
    os.utime(file, (time.time() + 9, time.time() + 9))
    assert client.get("/info", headers=bearer("new-token")).status_code == 200


def test_a_shared_or_empty_tokens_file_is_refused_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "application.yml"
    config.write_text("server:\n  auth:\n    tokens_file: tokens.txt\n")
    file = tokens_file(tmp_path, TOKEN, mode=0o644)
    with pytest.raises(ConfigError, match=r"readable or writable by other users.*chmod 600"):
        load_settings(config)
    file.chmod(0o600)
    assert load_settings(config).auth.tokens_file == file
    tokens_file(tmp_path)
    with pytest.raises(ConfigError, match="holds no token"):
        load_settings(config)
    file.write_text("two tokens on one line\n")
    with pytest.raises(ConfigError, match="line 1: a token may not contain spaces") as info:
        load_settings(config)
    assert "two tokens" not in str(info.value)
    file.unlink()
    with pytest.raises(ConfigError, match=r"tokens\.txt: cannot be read"):
        load_settings(config)


def test_the_environment_names_the_tokens_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tokens_file(tmp_path, TOKEN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SERVER_AUTH_TOKENS_FILE", "tokens.txt")
    assert load_settings(None).auth.tokens_file == file
    config = tmp_path / "application.yml"
    config.write_text("server:\n  auth:\n    tokens_file: elsewhere.txt\n")
    assert load_settings(config).auth.tokens_file == file  # the variable wins
    monkeypatch.setenv("SERVER_AUTH_TOKENS_FILE", "missing.txt")
    with pytest.raises(ConfigError, match=r"SERVER_AUTH_TOKENS_FILE: .*missing\.txt"):
        load_settings(None)


def test_a_batching_model_reports_its_batch_sizes(
    make_client: Callable[..., FlaskClient],
) -> None:
    client = make_client("dataframe")  # model.yml has batching:
    record = {"x1": 1.0, "x2": 2.0, "x3": 3.0}
    for _ in range(3):
        assert client.post("/predict", json={"input": record}).status_code == 200
    found = samples(client.get("/metrics").get_data(as_text=True))
    assert found[("catwalk_batch_size_count", ())] == 3  # one request at a time: batches of 1
    assert found[("catwalk_batch_size_bucket", (("le", "1.0"),))] == 3
    assert found[("catwalk_predict_duration_seconds_count", ())] == 3


# -- JSON logs -------------------------------------------------------------------------------


def test_json_formatter_writes_request_and_error_records(
    make_client: Callable[..., FlaskClient], capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import logging

    from catwalk.server.logs.jsonlog import JsonFormatter, nginx_line

    client = make_client("rng")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("catwalk.server")
    keep = Keep()
    logger.addHandler(keep)
    old = logger.level
    logger.setLevel("INFO")
    try:
        client.post("/predict", json={"input": RNG_INPUT, "correlation_id": "a\u2028b"})
        inf = {**RNG_INPUT, "mu": 1e308, "sigma": 1e308}  # 1e308 + 0.94 * 1e308: inf
        failed = client.post("/predict", json={"input": inf})
        assert failed.status_code == 500
        error_ids = {failed.get_json()["correlation_id"]}
    finally:
        logger.removeHandler(keep)
        logger.setLevel(old)
    # The worker names the model once it has loaded it (catwalk.server.logs.name_the_model).
    formatter = JsonFormatter({"model_name": "RNGModel", "model_version": "0.0.1"})
    formatted = [json.loads(formatter.format(r)) for r in records]
    line = next(f for f in formatted if f.get("status") == 200)
    assert line["correlation_id"] in ("a\u2028b", "a\\u2028b")  # a JSON string either way
    assert line["method"] == "POST" and line["path"] == "/predict"
    assert line["model_name"] == "RNGModel"
    error = next(f for f in formatted if f["level"] == "ERROR")
    assert error["message"].startswith("output.score: inf")  # no correlation_id= prefix
    assert error["correlation_id"] in error_ids  # the id the client got
    text = nginx_line(
        "2026/12/02 03:10:00 [error] 12#12: *5 upstream prematurely closed connection\n",
        {"model_name": "RNGModel", "model_version": "0.0.1"},  # the supervisor read model.yml
    )
    assert json.loads(text)["level"] == "ERROR"
    assert json.loads(text)["pid"] == 12
    assert json.loads(text)["source"] == "nginx"
    assert json.loads(text)["model_name"] == "RNGModel"
    already = '{"source": "nginx", "status": 413}'
    assert nginx_line(already + "\n") == already


def test_logging_format_must_be_text_or_json(tmp_path: Path) -> None:
    config = tmp_path / "application.yml"
    config.write_text("logging:\n  format: xml\n")
    with pytest.raises(ConfigError, match=r"logging\.format: must be one of text, json"):
        load_settings(config)
    config.write_text("logging:\n  format: json\n")
    assert load_settings(config).log_format == "json"


def test_a_dead_workers_metric_files_are_merged_exactly_into_one_archive(tmp_path: Path) -> None:
    from prometheus_client.mmap_dict import MmapedDict, mmap_key
    from prometheus_client.multiprocess import MultiProcessCollector

    from catwalk.server.ops.metrics import archive_files

    def write(name: str, values: dict[tuple[str, str, tuple[tuple[str, str], ...]], float]) -> None:
        data = MmapedDict(str(tmp_path / name))
        for (metric, sample, labels), value in values.items():
            key = mmap_key(metric, sample, [k for k, _ in labels], [v for _, v in labels], "h")
            data.write_value(key, value, 0.0)
        data.close()

    ok = (("endpoint", "/predict"), ("status", "200"))
    bucket = (("endpoint", "/predict"), ("le", "0.001"))
    for pid, n in ((101, 3.0), (102, 4.0), (103, 5.0)):  # three workers, 103 still alive
        write(f"counter_{pid}.db", {("catwalk_requests", "catwalk_requests_total", ok): n})
        write(
            f"histogram_{pid}.db",
            {
                ("catwalk_request_duration_seconds", "catwalk_request_duration_seconds_bucket",
                 bucket): n,
                ("catwalk_request_duration_seconds", "catwalk_request_duration_seconds_sum",
                 (("endpoint", "/predict"),)): n / 1000,
            },
        )  # fmt: skip
        write(f"gauge_max_{pid}.db", {("catwalk_model_info", "catwalk_model_info", ()): 1.0})

    def totals() -> dict[str, float]:
        found: dict[str, float] = {}
        for metric in MultiProcessCollector.merge(sorted(map(str, tmp_path.glob("*.db")))):
            for sample in metric.samples:
                found[sample.name] = found.get(sample.name, 0.0) + sample.value
        return found

    before = totals()
    archive_files(str(tmp_path), 101)
    archive_files(str(tmp_path), 102)
    archive_files(str(tmp_path), 999)  # no files: nothing to do
    assert totals() == before
    assert before["catwalk_requests_total"] == 12.0
    assert before["catwalk_request_duration_seconds_count"] == 12.0
    assert sorted(p.name for p in tmp_path.glob("*.db")) == [
        "counter_103.db", "counter_archive.db", "gauge_max_103.db", "gauge_max_archive.db",
        "histogram_103.db", "histogram_archive.db",
    ]  # fmt: skip


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
