"""``catwalk test-server``: check a running server against the REST contract and the test data.

:func:`check_server` makes the HTTP checks against any base URL (test-server's own server, a
server given with ``--url``, or test-image's container); :func:`wait_ready` waits for
``/status``; :func:`test_server` starts ``catwalk serve`` on a free port
(:class:`ServerProcess`), checks it, and always stops it again.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import requests
from urllib3.exceptions import InsecureRequestWarning

from catwalk.checks.model_checks import DEFAULT_TOLERANCE, MODEL_STEPS, TestData
from catwalk.checks.report import Report
from catwalk.errors import CatwalkError
from catwalk.model import LoadedModel
from catwalk.normalize import first_difference
from catwalk.ports import free_port

STOP_TIMEOUT = 10.0
_LOG_TAIL_LINES = 40
# The environment variables `catwalk serve` lets override its arguments: a server started by
# test-server must use the arguments it is given, whatever the caller's environment says.
_OVERRIDE_VARS = ("MODEL_PATH", "SERVER_CONFIG", "SERVER_PORT", "RUN_TESTS")


def wait_ready(
    base_url: str,
    *,
    timeout: float,
    verify: bool | str = True,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll ``GET /status`` until it answers 200; raise CatwalkError on timeout or death."""
    with _quiet_if_unverified(verify):
        _wait_ready(base_url, timeout, verify, alive)


def _wait_ready(
    base_url: str, timeout: float, verify: bool | str, alive: Callable[[], bool] | None
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    url = base_url.rstrip("/") + "/status"
    while True:
        if alive is not None and not alive():
            raise CatwalkError(f"the server process exited before {url} answered")
        try:
            response = requests.get(url, timeout=2.0, verify=verify)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = _short(exc)
        if time.monotonic() >= deadline:
            raise CatwalkError(f"{url} did not answer 200 within {timeout:g}s (last: {last})")
        time.sleep(0.1)


def check_server(
    base_url: str,
    model: LoadedModel,
    data: TestData,
    report: Report,
    *,
    verify: bool | str = True,
    timeout: float = 10.0,
    tolerance: float = DEFAULT_TOLERANCE,
    token: str | None = None,
) -> None:
    """Check the server at ``base_url`` serving ``model``; one report line per check.

    ``token``: sent as ``Authorization: Bearer <token>`` (a server with ``server.auth``); a
    further check then makes sure a request without it is refused.
    """
    checker = _Checker(base_url, model, data, report, verify, timeout, tolerance, token)
    with checker.session, _quiet_if_unverified(verify):
        for check in checker.checks():
            try:
                check()
            except requests.RequestException as exc:
                report.fail(checker.current, f"request failed: {_short(exc)}")
            except _Failed as failed:
                report.fail(checker.current, str(failed))


@contextmanager
def _quiet_if_unverified(verify: bool | str) -> Iterator[None]:
    """Without verification (self-signed pairs), urllib3 would warn on every single request."""
    with warnings.catch_warnings():
        if verify is False:
            warnings.simplefilter("ignore", InsecureRequestWarning)
        yield


class _Failed(Exception):
    pass


class _Checker:
    def __init__(
        self,
        base_url: str,
        model: LoadedModel,
        data: TestData,
        report: Report,
        verify: bool | str,
        timeout: float,
        tolerance: float,
        token: str | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.token = token
        self.model = model
        self.spec = model.spec
        self.data = data
        self.report = report
        self.timeout = timeout
        self.tolerance = tolerance
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"
        # Per request, not session.verify: REQUESTS_CA_BUNDLE would silently win over that.
        self.verify = verify
        self.ref = {"name": self.spec.name, "version": self.spec.version}
        self.current = ""

    def checks(self) -> list[Callable[[], None]]:
        return [
            self.status,
            self.info,
            self.predictions,
            self.correlation_id_echoed,
            self.correlation_id_generated,
            self.model_accepted,
            self.extra_data_echoed,
            self.not_json,
            self.wrong_name,
            self.wrong_version,
            *([self.concurrent] if self.spec.batching is not None else []),
            *([self.token_required] if self.token is not None else []),
        ]

    # -- helpers ---------------------------------------------------------------------------

    def _start(self, name: str) -> None:
        self.current = name

    def _get(self, path: str) -> requests.Response:
        return self.session.get(self.base + path, timeout=self.timeout, verify=self.verify)

    def _post(self, body: bytes | dict[str, Any]) -> requests.Response:
        if isinstance(body, dict):
            return self.session.post(
                self.base + "/predict", json=body, timeout=self.timeout, verify=self.verify
            )
        headers = {"Content-Type": "application/json"}
        return self.session.post(
            self.base + "/predict",
            data=body,
            headers=headers,
            timeout=self.timeout,
            verify=self.verify,
        )

    def _json(self, response: requests.Response, status: int) -> Any:
        """The response's JSON body, after checking its status and content type."""
        if response.status_code != status:
            raise _Failed(
                f"expected HTTP {status}, got {response.status_code}: {_snippet(response)}"
            )
        content_type = response.headers.get("Content-Type", "")
        if not content_type.startswith("application/json"):
            raise _Failed(f"Content-Type is {content_type!r}, not application/json")
        try:
            return response.json()
        except ValueError:
            raise _Failed(f"body is not JSON: {_snippet(response)}") from None

    def _predict_ok(self, envelope: dict[str, Any]) -> dict[str, Any]:
        body = self._json(self._post(envelope), 200)
        if not isinstance(body, dict):
            raise _Failed(f"response is not a JSON object: {body!r:.200}")
        return body

    def _error(self, response: requests.Response, status: int) -> str:
        body = self._json(response, status)
        message = body.get("output", {}).get("message") if isinstance(body, dict) else None
        if not isinstance(message, str) or not message:
            raise _Failed(f'error body has no "output": {{"message": ...}}: {body!r:.200}')
        return message

    @property
    def first_input(self) -> Any:
        return self.data.inputs[0]

    # -- checks ----------------------------------------------------------------------------

    def status(self) -> None:
        self._start("GET /status")
        response = self._get("/status")
        if response.status_code != 200:
            raise _Failed(f"expected HTTP 200, got {response.status_code}: {_snippet(response)}")
        self.report.ok(self.current, "200")

    def info(self) -> None:
        self._start("GET /info")
        body = self._json(self._get("/info"), 200)
        expected = self.spec.info()
        if body != expected:
            raise _Failed(f"differs from model.yml: {_info_difference(expected, body)}")
        self.report.ok(self.current, f"equals model.yml ({self.spec.name} {self.spec.version})")

    def predictions(self) -> None:
        self._start("POST /predict: test data")
        problems: list[str] = []
        for i, (x, expected) in enumerate(zip(self.data.inputs, self.data.outputs, strict=True)):
            row = "" if self.data.batch else f"row {i}: "
            body = self._predict_ok({"input": x})
            if "output" not in body:
                problems.append(f'{row}response has no "output"')
                continue
            got = body["output"]
            problems += [row + m for m in self.model.output_errors(got, "output")]
            diff = first_difference(expected, got, self.tolerance, "output")
            if diff:
                problems.append(row + diff)
            if len(problems) >= 5:
                break
        if problems:
            raise _Failed("\n".join(problems[:5]))
        count = (
            f"a batch of {len(self.data.outputs[0])} record(s)"
            if self.data.batch
            else f"{len(self.data.inputs)} request(s)"
        )
        self.report.ok(
            self.current,
            f"{count}: outputs validate and equal y (rel. tolerance {self.tolerance:g})",
        )

    def correlation_id_echoed(self) -> None:
        self._start("POST /predict: correlation_id echoed")
        sent = f"catwalk-test-{uuid.uuid4()}"
        body = self._predict_ok({"correlation_id": sent, "input": self.first_input})
        if body.get("correlation_id") != sent:
            raise _Failed(f"sent {sent!r}, got {body.get('correlation_id')!r}")
        self.report.ok(self.current, sent)

    def correlation_id_generated(self) -> None:
        self._start("POST /predict: correlation_id generated")
        first = self._predict_ok({"input": self.first_input}).get("correlation_id")
        second = self._predict_ok({"input": self.first_input}).get("correlation_id")
        if not isinstance(first, str) or not first:
            raise _Failed(f"expected a generated correlation_id, got {first!r}")
        if first == second:
            raise _Failed(f"two requests got the same correlation_id {first!r}")
        self.report.ok(self.current, first)

    def model_accepted(self) -> None:
        self._start("POST /predict: matching model accepted")
        body = self._predict_ok({"model": dict(self.ref), "input": self.first_input})
        if body.get("model") != self.ref:
            raise _Failed(f"sent model {self.ref}, got {body.get('model')!r}")
        self.report.ok(self.current, f"{self.spec.name} {self.spec.version} echoed")

    def extra_data_echoed(self) -> None:
        self._start("POST /predict: extra_data echoed")
        extra = {
            "caller": "catwalk test-server",
            "nested": {"list": [1, 2.5, "três", None, True], "empty": {}},
            "id": str(uuid.uuid4()),
        }
        body = self._predict_ok({"input": self.first_input, "extra_data": extra})
        if body.get("extra_data") != extra:
            raise _Failed(f"sent {extra!r}, got {body.get('extra_data')!r:.200}")
        self.report.ok(self.current, "unchanged")

    def not_json(self) -> None:
        self._start("POST /predict: non-JSON body -> 400")
        message = self._error(self._post(b"this is not JSON"), 400)
        self.report.ok(self.current, message)

    def wrong_name(self) -> None:
        self._start("POST /predict: wrong model name -> 404")
        ref = {"name": self.spec.name + "-other", "version": self.spec.version}
        message = self._error(self._post({"model": ref, "input": self.first_input}), 404)
        self.report.ok(self.current, message)

    def wrong_version(self) -> None:
        self._start("POST /predict: wrong model version -> 404")
        ref = {"name": self.spec.name, "version": self.spec.version + "-other"}
        message = self._error(self._post({"model": ref, "input": self.first_input}), 404)
        self.report.ok(self.current, message)

    def concurrent(self) -> None:
        """A batching model: many requests at once, each answer must be its own request's."""
        self._start("POST /predict: concurrent requests (batching)")
        assert self.spec.batching is not None
        cases = _concurrent_cases(self.model, self.data)
        count = max(8, min(2 * self.spec.batching.max_batch_size, 64))
        sent = [(f"catwalk-test-{i}-{uuid.uuid4().hex[:8]}", *cases[i % len(cases)])
                for i in range(count)]  # fmt: skip

        def send(case: tuple[str, Any, Any]) -> str | None:
            correlation_id, x, expected = case
            try:
                response = requests.post(
                    self.base + "/predict",
                    json={"correlation_id": correlation_id, "input": x},
                    headers=self.session.headers,
                    timeout=self.timeout,
                    verify=self.verify,
                )
                body = self._json(response, 200)
            except (_Failed, requests.RequestException) as exc:
                return f"{correlation_id}: {exc}"
            if body.get("correlation_id") != correlation_id:
                return (
                    f"{correlation_id}: answered with correlation_id {body.get('correlation_id')!r}"
                )
            if body.get("input") != x:
                return f"{correlation_id}: answered with another request's input"
            diff = first_difference(expected, body.get("output"), self.tolerance, "output")
            return f"{correlation_id}: {diff}" if diff else None

        with ThreadPoolExecutor(count) as pool:
            problems = [p for p in pool.map(send, sent) if p]
        if problems:
            raise _Failed("\n".join(problems[:5]))
        self.report.ok(
            self.current, f"{count} requests at once: each answer is its own request's and equals y"
        )

    def token_required(self) -> None:
        self._start("POST /predict: no token, 401")
        response = requests.post(
            self.base + "/predict",
            json={"input": self.first_input},
            timeout=self.timeout,
            verify=self.verify,
        )
        self._error(response, 401)
        challenge = response.headers.get("WWW-Authenticate", "")
        if not challenge.startswith("Bearer"):
            raise _Failed(f"WWW-Authenticate is {challenge!r}, not Bearer ...")
        self.report.ok(self.current, "401 with WWW-Authenticate: Bearer")


def _concurrent_cases(model: LoadedModel, data: TestData) -> list[tuple[Any, Any]]:
    """(input, expected output) pairs, one record each when the test set is one batch."""
    if not data.batch:
        return list(zip(data.inputs, data.outputs, strict=True))
    records, outputs = data.inputs[0], data.outputs[0]
    if model.spec.batch_kind == "concat":
        return [([x], [y]) for x, y in zip(records, outputs, strict=True)]
    return list(zip(records, outputs, strict=True))


def _info_difference(expected: dict[str, Any], got: Any) -> str:
    if not isinstance(got, dict):
        return f"expected an object, got {got!r:.100}"
    for key in [*expected, *(k for k in got if k not in expected)]:
        if key not in got:
            return f"{key}: missing from /info"
        if key not in expected:
            return f"{key}: in /info but not in model.yml"
        if expected[key] != got[key]:
            return f"{key}: model.yml has {expected[key]!r:.100}, /info has {got[key]!r:.100}"
    return "?"


def _snippet(response: requests.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return (text[:200] + "...") if len(text) > 200 else (text or "(empty body)")


def unreachable(base_url: str, *, verify: bool | str = True, timeout: float = 10.0) -> str | None:
    """Why nothing answers HTTP at ``base_url`` (short), or None when something does."""
    try:
        with _quiet_if_unverified(verify):
            requests.get(base_url.rstrip("/") + "/status", timeout=timeout, verify=verify)
    except requests.RequestException as exc:
        return connection_problem(exc)
    return None


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def connection_problem(exc: BaseException) -> str:
    """A requests error in a few words: "connection refused", "timed out", an SSL problem."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        found = re.search(r"SSLError\((?:\d+, )?['\"]?([^'\"]+)", text)
        return f"TLS error: {found.group(1) if found else 'handshake failed'}"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    found = _ERRNO.search(text)
    if found:
        return found.group(1).strip().rstrip(".").lower()
    if "Name or service not known" in text or "NameResolutionError" in text:
        return "host name not found"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the connection was closed without an answer"
    return _short(text.splitlines()[0] if text else type(exc).__name__)


def _short(exc: BaseException | str) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:297] + "..."


class ServerProcess:
    """``catwalk serve`` in a child process, with its output kept in a temporary file."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        port: int,
        server_config: str | Path | None = None,
        debug: bool = False,
    ) -> None:
        self.port = port
        self.command = [
            sys.executable,
            "-m",
            "catwalk",
            "serve",
            "--model-path",
            str(model_path),
            "--server-port",
            str(port),
            "--no-run-tests",
            "--no-install",  # the caller has installed them already
        ]
        if server_config is not None:
            self.command += ["--server-config", str(server_config)]
        if debug:
            self.command.append("--debug")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _OVERRIDE_VARS}
        env["PYTHONUNBUFFERED"] = "1"
        # Its own session: a Ctrl-C in the terminal reaches test-server, which then stops the
        # server itself (and can kill its whole group if it does not stop in time).
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL to its process group after ``timeout``; returns its exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(process.pid)
                process.wait()
        # The server's own children (nginx, gunicorn) must not outlive it either.
        self._kill_group(process.pid)
        return process.returncode

    @staticmethod
    def _kill_group(pgid: int) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace")
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def close(self) -> None:
        self._log.close()


def planned_steps(url: str | None, step: int = 7) -> tuple[str, ...]:
    """test-server's numbered steps (the HTTP checks between them depend on the server)."""
    if url is not None:
        return (*MODEL_STEPS[: step - 1], f"{step}. server")
    return (*MODEL_STEPS[: step - 1], f"{step}. server starts", f"{step + 1}. server stops")


def test_server(
    model: LoadedModel,
    data: TestData,
    report: Report,
    *,
    url: str | None = None,
    server_config: str | Path | None = None,
    scheme: str = "http",
    debug: bool = False,
    verify: bool | str = True,
    tolerance: float = DEFAULT_TOLERANCE,
    ready_timeout: float = 120.0,
    step: int = 7,
    token: str | None = None,
) -> None:
    """Check ``url``, or start the model's own server and check it; report every step."""
    if url is not None:
        problem = unreachable(url, verify=verify)
        if problem is not None:
            report.fail(f"{step}. server", f"server not reachable at {url}: {problem}")
            return
        report.ok(f"{step}. server", f"checking {url} (already running)")
        check_server(url, model, data, report, verify=verify, tolerance=tolerance, token=token)
        return
    mode = "debug" if debug else "production"
    port = free_port()
    server = ServerProcess(model.spec.path, port=port, server_config=server_config, debug=debug)
    base_url = f"{scheme}://127.0.0.1:{port}"
    show_log = started = False
    try:
        server.start()
        try:
            wait_ready(base_url, timeout=ready_timeout, verify=verify, alive=server.alive)
        except CatwalkError as exc:
            report.fail(f"{step}. server starts", f"{mode} server: {exc}")
            show_log = True
            return
        started = True
        report.ok(f"{step}. server starts", f"{mode} server answers on {base_url}")
        check_server(base_url, model, data, report, verify=verify, tolerance=tolerance, token=token)
        show_log = not report.passed
    finally:
        stopping = time.monotonic()
        code = server.stop()
        took = time.monotonic() - stopping
        if started and took >= STOP_TIMEOUT:
            report.fail(f"{step + 1}. server stops", f"killed after {STOP_TIMEOUT:g}s")
            show_log = True
        elif started:
            report.ok(f"{step + 1}. server stops", f"exit code {code} after {took:.1f}s")
        if show_log:
            report.echo("--- server log (last lines) ---\n" + server.log_tail())
        server.close()
