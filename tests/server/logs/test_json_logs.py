"""``logging.format: json``: the JSON formatter of request and error records, nginx's lines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from catwalk.config import load_settings
from catwalk.errors import ConfigError

RNG_INPUT = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}


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
