"""Issue 9's server-side classes, in process: log escaping, ids nginx can see, OPTIONS,
gunicorn's own errors as JSON, the run secret, worker recycling and cut-request hooks."""

from __future__ import annotations

import io
import json
import logging
import unicodedata
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient

from catwalk.config import ServerSettings
from catwalk.server.app import create_app
from catwalk.server.logs import safe
from catwalk.server.production.children import relay
from catwalk.server.worker.wsgi import ServedApp

ClientFactory = Callable[..., FlaskClient]
RNG_INPUT = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}
# One of each kind of character a log line must not hold raw: line/paragraph separators, bidi
# overrides and isolates, zero-width and other format characters, C1 NEL, a no-break space,
# a tag character (astral, Cf), a lone surrogate, an unassigned code point.
UNSAFE = "\u2028\u2029\u202e\u2066\u200b\u200d\ufeff\x85\xa0\U000e0001\ud800\U000effff"


def post(client: FlaskClient, body: bytes, **kwargs: Any) -> Any:
    return client.post("/predict", data=body, content_type="application/json", **kwargs)


# -- 11. log injection ---------------------------------------------------------------------


@pytest.mark.parametrize("char", list(UNSAFE))
def test_safe_escapes_every_unicode_line_and_format_character(char: str) -> None:
    category = unicodedata.category(char)
    escaped = safe(f"id{char}INFO fake")
    assert char not in escaped, category
    assert escaped.isprintable() and escaped.startswith("id\\") and escaped.endswith("INFO fake")


def test_a_correlation_id_with_unicode_separators_is_logged_escaped(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    correlation_id = "order\u2028INFO fake line \u202eevil"
    body = orjson.dumps({"correlation_id": correlation_id, "input": RNG_INPUT})
    with caplog.at_level(logging.DEBUG, logger="catwalk.server"):
        reply = post(make_client("rng"), body)
        post(make_client("rng"), orjson.dumps({"correlation_id": correlation_id, "input": 1}))
    assert reply.status_code == 200 and reply.get_json()["correlation_id"] == correlation_id
    lines = [m for m in caplog.messages if "order" in m]
    assert len(lines) == 3, caplog.messages  # 200 line, the 400's debug line and its line
    for line in lines:
        assert "\u2028" not in line and "\u202e" not in line
        assert "correlation_id=order\\u2028INFO fake line \\u202eevil" in line


def test_relayed_nginx_lines_escape_what_nginx_does_not(tmp_path: Any) -> None:
    record = {"status": 400, "path": "/a\u2028b\u202ec\U000e0001"}
    source = io.BytesIO(
        json.dumps(record, ensure_ascii=False).encode() + b"\n" + b"plain \xff line\n"
    )
    target = io.StringIO()
    relay(source, target)
    first, second = target.getvalue().splitlines()
    assert first.isprintable() and json.loads(first) == record  # the same JSON, escaped
    assert second == "plain \ufffd line"


# -- 9. the client's id where nginx can see it ----------------------------------------------


def test_x_correlation_id_names_a_request_whose_body_has_none(make_client: ClientFactory) -> None:
    client = make_client("rng")
    headers = {"X-Correlation-Id": "order-17"}
    assert (
        post(client, orjson.dumps({"input": RNG_INPUT}), headers=headers).get_json()[
            "correlation_id"
        ]
        == "order-17"
    )
    assert post(client, b"{", headers=headers).get_json()["correlation_id"] == "order-17"
    # The body's own id wins; a malformed header (space, quote, too long) is ignored.
    body = orjson.dumps({"correlation_id": "in-body", "input": RNG_INPUT})
    assert post(client, body, headers=headers).get_json()["correlation_id"] == "in-body"
    for bad in ("two words", 'q"uote', "x" * 257):
        reply = post(client, orjson.dumps({"input": RNG_INPUT}), headers={"X-Correlation-Id": bad})
        assert reply.get_json()["correlation_id"] != bad


# -- 10. OPTIONS and gunicorn's own errors ---------------------------------------------------


@pytest.mark.parametrize(("path", "allow"), [("/predict", "POST"), ("/status", "GET, HEAD")])
def test_options_is_a_json_405_with_allow(
    make_client: ClientFactory, path: str, allow: str
) -> None:
    reply = make_client("rng").options(path)
    assert reply.status_code == 405
    assert reply.headers["Content-Type"] == "application/json"
    assert set(reply.headers["Allow"].split(", ")) == set(allow.split(", "))
    assert reply.get_json()["output"]["message"].startswith(f"method not allowed: OPTIONS {path}")


# -- 12. X-Request-Id only from nginx --------------------------------------------------------


@pytest.mark.parametrize(("sent", "trusted"), [("s3cret", True), ("guess", False), (None, False)])
def test_x_request_id_is_trusted_only_with_the_run_secret(
    load: Any, sent: str | None, trusted: bool
) -> None:
    app = create_app(load("rng"), ServerSettings())
    app.wsgi_app = ServedApp(app.wsgi_app, "s3cret")  # type: ignore[method-assign]
    headers = {"X-Request-Id": "forged"}
    if sent is not None:
        headers["X-Catwalk-Proxy"] = sent
    reply = post(app.test_client(), orjson.dumps({"input": RNG_INPUT}), headers=headers)
    assert (reply.get_json()["correlation_id"] == "forged") is trusted
