"""``catwalk test-server``, ``catwalk test`` and serve's options, through click's runner."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from catwalk.checks.model_checks import load_test_data
from catwalk.checks.report import Report
from catwalk.checks.server_checks import check_server
from catwalk.cli import cli
from catwalk.model import LoadedModel

Start = Callable[..., Any]  # conftest.start_server
TlsPair = Any  # conftest.TlsPair
ModelPath = Callable[[str], Path]


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def port_in(output: str) -> int:
    match = re.search(r"answers on https?://127\.0\.0\.1:(\d+)", output)
    assert match, output
    return int(match.group(1))


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# -- the one rule: a variable that is set overrides the flag typed on the command line ---------


def test_serve_reads_the_environment_when_no_flag_is_given(
    monkeypatch: pytest.MonkeyPatch, clean_env: None, tmp_path: Path
) -> None:
    # MODEL_PATH points nowhere, so serve stops right after reading its arguments.
    missing = str(tmp_path / "no-model")
    monkeypatch.setenv("MODEL_PATH", missing)
    result = CliRunner().invoke(cli, ["serve", "--no-install"])
    assert result.exit_code == 1
    assert missing in result.output
    assert "overrides" not in result.output


def test_a_variable_overrides_its_flag_and_says_so(
    monkeypatch: pytest.MonkeyPatch, clean_env: None, tmp_path: Path
) -> None:
    # The seed's contract: "setting these will override anything passed as a CLI argument".
    from_env = str(tmp_path / "from-env")
    monkeypatch.setenv("MODEL_PATH", from_env)
    monkeypatch.setenv("SERVER_PORT", "8081")
    given = str(tmp_path / "from-flag")
    result = CliRunner().invoke(cli, ["serve", "--no-install", "-m", given, "--server-port", "9"])
    assert result.exit_code == 1
    assert f"MODEL_PATH={from_env} overrides --model-path {given}" in result.output
    assert "SERVER_PORT=8081 overrides --server-port 9" in result.output
    # The error is about the folder the variable named, never the flag's.
    error = result.output.split("overrides --server-port 9\n")[-1]
    assert from_env in error and given not in error


def test_a_secret_variable_is_not_echoed(
    monkeypatch: pytest.MonkeyPatch, clean_env: None, tmp_path: Path
) -> None:
    monkeypatch.setenv("CATWALK_TOKEN", "s3cret-from-env")
    result = CliRunner().invoke(
        cli, ["test-server", "-m", str(tmp_path / "none"), "--token", "typed-s3cret"]
    )
    assert "CATWALK_TOKEN overrides --token given on the command line" in result.output
    assert "s3cret" not in result.output


@pytest.mark.parametrize("command", ["test-model", "test-server", "build-prep", "deploy-prep"])
def test_every_command_follows_the_same_rule(
    monkeypatch: pytest.MonkeyPatch, clean_env: None, tmp_path: Path, command: str
) -> None:
    result = CliRunner().invoke(cli, [command, "-m", str(tmp_path / "from-flag")])
    assert "from-flag" in result.output, result.output
    monkeypatch.setenv("MODEL_PATH", str(tmp_path / "from-env"))
    result = CliRunner().invoke(cli, [command])
    assert "from-env" in result.output, result.output
    result = CliRunner().invoke(cli, [command, "-m", str(tmp_path / "from-flag")])
    assert "from-env" in result.output, result.output
    note = f"overrides --model-path {tmp_path}/from-flag\n"
    assert note in result.output, result.output
    assert "from-flag" not in result.output.split(note)[-1], result.output


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    for name in ("MODEL_PATH", "SERVER_CONFIG", "SERVER_PORT", "RUN_TESTS"):
        monkeypatch.setenv(name, "")
    result = CliRunner().invoke(cli, ["serve", "--no-install", "-m", "/nonexistent-catwalk"])
    assert result.exit_code == 1
    assert "/nonexistent-catwalk" in result.output
    assert "overrides" not in result.output


@pytest.mark.parametrize(("name", "value"), [("SERVER_PORT", "80a"), ("RUN_TESTS", "maybe")])
def test_bad_env_values_are_usage_errors(
    monkeypatch: pytest.MonkeyPatch, clean_env: None, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["serve", "--no-install"])
    assert result.exit_code == 2
    assert f"(env var: '{name}')" in result.output
    assert "Traceback" not in result.output


def test_serve_help_documents_the_variables() -> None:
    result = run("serve", "--help")
    assert result.exit_code == 0
    for text in ("MODEL_PATH", "SERVER_CONFIG", "SERVER_PORT", "RUN_TESTS", "--debug"):
        assert text in result.output


# -- test-server -----------------------------------------------------------------------------


@pytest.mark.slow
def test_test_server_starts_a_debug_server_checks_it_and_stops_it(
    model_path: ModelPath, clean_env: None
) -> None:
    result = run("test-server", "-m", str(model_path("rng")), "--debug")
    assert result.exit_code == 0, result.output
    for line in (
        "[PASS] 7. server starts: debug server answers on http://127.0.0.1:",
        "[PASS] GET /status",
        "[PASS] GET /info",
        "[PASS] POST /predict: test data: 5 request(s)",
        "[PASS] POST /predict: correlation_id echoed",
        "[PASS] POST /predict: correlation_id generated",
        "[PASS] POST /predict: matching model accepted",
        "[PASS] POST /predict: extra_data echoed",
        "[PASS] POST /predict: non-JSON body -> 400",
        "[PASS] POST /predict: wrong model name -> 404",
        "[PASS] POST /predict: wrong model version -> 404",
        "[PASS] GET /v2/health/live",
        "[PASS] GET /v2/health/ready",
        "[PASS] GET /v2: server metadata: catwalk",
        "[PASS] GET /v2/models/RNGModel: model metadata: seed INT64[-1]",
        "[PASS] POST /v2/models/RNGModel/infer: test data, JSON tensors: 5 record(s)",
        "[PASS] POST /v2/models/RNGModel/infer: test data, binary tensors: 5 record(s)",
        "[PASS] POST /v2/models/<other>/infer -> 404",
        "[PASS] 8. server stops",
        "test-server: all 25 step(s) passed",
    ):
        assert line in result.output
    assert not listening(port_in(result.output))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["batch", "dataframe", "numpy_output"])
def test_test_server_passes_the_other_examples(
    model_path: ModelPath, clean_env: None, name: str
) -> None:
    result = run("test-server", "-m", str(model_path(name)), "--debug")
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_test_server_over_https(model_path: ModelPath, tls: TlsPair, clean_env: None) -> None:
    rng = str(model_path("rng"))
    result = run("test-server", "-m", rng, "--debug", "--server-config", str(tls.config))
    assert result.exit_code == 0, result.output
    assert "answers on https://127.0.0.1:" in result.output
    verified = run(
        "test-server",
        "-m",
        rng,
        "--debug",
        "--server-config",
        str(tls.config),
        "--cacert",
        str(tls.cert),
    )
    assert verified.exit_code == 0, verified.output


@pytest.mark.slow
def test_test_server_with_url_checks_a_running_server(
    start_server: Start, model_path: ModelPath, tls: TlsPair
) -> None:
    plain = start_server("rng", "--debug")
    result = run("test-server", "-m", str(model_path("rng")), "--url", plain.url)
    assert result.exit_code == 0, result.output
    assert f"checking {plain.url} (already running)" in result.output
    assert "server stops" not in result.output
    assert plain.process.poll() is None  # a server it did not start is left running

    secure = start_server("rng", "--debug", config=tls.config, scheme="https")
    result = run("test-server", "-m", str(model_path("rng")), "--url", secure.url)
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_test_server_fails_on_a_server_of_another_model(
    start_server: Start, model_path: ModelPath
) -> None:
    server = start_server("echo", "--debug")
    result = run("test-server", "-m", str(model_path("rng")), "--url", server.url)
    assert result.exit_code == 1
    assert (
        "[FAIL] GET /info: differs from model.yml: name: model.yml has 'RNGModel', /info has 'Echo'"
        in result.output
    )
    assert "[FAIL] POST /predict: test data" in result.output
    assert "test-server: " in result.output and "failed" in result.output


@pytest.mark.slow
def test_test_server_reports_failures_shows_the_log_and_still_stops(
    model_path: ModelPath, clean_env: None
) -> None:
    result = run("test-server", "-m", str(model_path("wrong_predictions")), "--debug")
    assert result.exit_code == 1
    assert "[FAIL] POST /predict: test data: row 1: output.x: expected 2, got 2.5" in result.output
    assert "--- server log (last lines) ---" in result.output
    assert "[PASS] 8. server stops" in result.output
    assert not listening(port_in(result.output))


def test_test_server_on_an_unreachable_url_fails_once_and_stops(model_path: ModelPath) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        url = f"http://127.0.0.1:{port}"
        result = run("test-server", "-m", str(model_path("rng")), "--url", url)
    assert result.exit_code == 1
    assert f"server not reachable at {url}: connection refused" in result.output
    assert result.output.count("[FAIL]") == 1, result.output
    assert "GET /status" not in result.output
    assert "urllib3" not in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "url", ["localhost:9090", "ftp://localhost:9090", "http://", "http://host:port", "9090"]
)
def test_test_server_url_must_be_http_with_a_host(model_path: ModelPath, url: str) -> None:
    result = CliRunner().invoke(cli, ["test-server", "-m", str(model_path("rng")), "--url", url])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--url'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_test_server_reports_a_server_that_cannot_start(
    model_path: ModelPath, tmp_path: Path, clean_env: None
) -> None:
    # The model constructs once in test-server itself, then refuses in the server it starts.
    folder = tmp_path / "second_load_fails"
    folder.mkdir()
    (folder / "model.yml").write_bytes((model_path("raises") / "model.yml").read_bytes())
    (folder / "model.py").write_text(
        "import os\n"
        "ROWS = [{'x': 1, 'label': 'one'}]\n"
        "class Model:\n"
        "    def __init__(self, path):\n"
        "        marker = os.path.join(path, 'loaded-once')\n"
        "        if os.path.exists(marker):\n"
        "            raise RuntimeError('second load refused')\n"
        "        open(marker, 'w').close()\n"
        "    def load_test_data(self, path):\n"
        "        return list(ROWS), list(ROWS)\n"
        "    def predict(self, X):\n"
        "        return dict(X)\n"
    )
    result = run("test-server", "-m", str(folder), "--debug")
    assert result.exit_code == 1
    assert "[FAIL] 7. server starts: debug server: the server process exited" in result.output
    assert "--- server log (last lines) ---" in result.output
    assert "second load refused" in result.output
    assert "Traceback (most recent call last)" in result.output  # the user's, from the log


def test_test_server_stops_after_a_failing_model_step(model_path: ModelPath) -> None:
    result = run("test-server", "-m", str(model_path("raises_in_init")))
    assert result.exit_code == 1
    assert "[FAIL] 4. model loads" in result.output
    assert "server starts" not in result.output


def test_a_bad_server_config_is_a_clean_error(model_path: ModelPath, tmp_path: Path) -> None:
    config = tmp_path / "application.yml"
    config.write_text("server:\n  wokers: 2\n")
    result = run("test-server", "-m", str(model_path("rng")), "--server-config", str(config))
    assert result.exit_code == 1
    assert "server.wokers: unknown key" in result.output


# -- test ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_test_runs_test_model_then_test_server(model_path: ModelPath, clean_env: None) -> None:
    result = run("test", "-m", str(model_path("rng")), "--debug")
    assert result.exit_code == 0, result.output
    assert "test-model: all 7 step(s) passed" in result.output
    assert "test-server: all 19 step(s) passed" in result.output
    assert result.output.index("test-model: all") < result.output.index("8. server starts")


def test_test_stops_when_test_model_fails(model_path: ModelPath) -> None:
    result = run("test", "-m", str(model_path("wrong_predictions")), "--debug")
    assert result.exit_code == 1
    assert "[FAIL] 7. predictions" in result.output
    assert "test-server" not in result.output


# -- check_server on its own (as test-image calls it) ----------------------------------------


@pytest.mark.slow
def test_check_server_reports_one_line_per_check(
    start_server: Start, load: Callable[[str], LoadedModel]
) -> None:
    server = start_server("batch", "--debug")
    model = load("batch")
    lines: list[str] = []
    report = Report("check", echo=lines.append)
    data = load_test_data(model, Report("data", echo=lambda _: None))
    assert data is not None
    check_server(server.url, model, data, report, verify=False, timeout=5.0, tolerance=1e-9)
    assert report.passed, lines
    assert len(lines) == 10
    assert lines[2].startswith("[PASS] POST /predict: test data: a batch of 5 record(s)")


@pytest.mark.slow
def test_ctrl_c_during_test_server_still_stops_the_server(model_path: ModelPath) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SERVER_PORT", "MODEL_PATH")}
    env["PYTHONUNBUFFERED"] = "1"
    command = [sys.executable, "-m", "catwalk", "test-server", "-m", str(model_path("slow"))]
    process = subprocess.Popen(
        [*command, "--debug"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
    )
    try:
        assert process.stdout is not None
        output = ""
        deadline = time.monotonic() + 60
        while "answers on" not in output and time.monotonic() < deadline:
            output += process.stdout.readline()
        port = port_in(output)
        assert listening(port)
        time.sleep(0.3)  # in the middle of the (slow) prediction checks
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output += rest
    assert process.returncode != 0
    assert "[PASS] 8. server stops" in output
    assert "Aborted!" in output
    assert not listening(port)


# -- bearer tokens ---------------------------------------------------------------------------


def test_test_server_checks_a_protected_server_with_its_token(
    model_path: ModelPath, tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CATWALK_TOKEN", raising=False)
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("first-token\nsecond-token\n")
    tokens.chmod(0o600)
    config = tmp_path / "application.yml"
    config.write_text("server:\n  workers: 1\n  auth:\n    tokens_file: tokens.txt\n")
    rng = str(model_path("rng"))
    # The server test-server starts itself: a token of its own file is used.
    result = run("test-server", "-m", rng, "--server-config", str(config), "--no-install")
    assert result.exit_code == 0, result.output
    assert "POST /predict: no token, 401" in result.output
    result = run(
        "test-server", "-m", rng, "--server-config", str(config), "--no-install", "--debug",
        "--token", "wrong-token",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "expected HTTP 200, got 401" in result.output
    monkeypatch.setenv("CATWALK_TOKEN", "second-token")
    result = run(
        "test-server", "-m", rng, "--server-config", str(config), "--no-install", "--debug"
    )
    assert result.exit_code == 0, result.output
