"""Bearer-token auth (``server.auth.tokens_file``): a WSGI layer in front of the app."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from ops_answers import RNG_INPUT, error

from catwalk.config import AuthSettings, ServerSettings, load_settings
from catwalk.errors import ConfigError
from catwalk.model import LoadedModel
from catwalk.server.app import create_app
from catwalk.server.ops import auth

TOKEN = "t0k-EN_abc.123~/+="


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
