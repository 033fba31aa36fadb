"""``catwalk test-server``'s HTTP checks: a server against the REST contract and the test data.

The Open Inference Protocol's ``/v2`` checks follow (:mod:`catwalk.checks.v2_checks`).

:func:`check_server` makes the checks against any base URL (test-server's own server, a server
given with ``--url``, or test-image's container). Waiting for a server lives in
:mod:`catwalk.checks.server_reach`, starting and stopping one in
:mod:`catwalk.checks.server_process`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import requests

from catwalk.checks.model_checks import TestData
from catwalk.checks.report import Report
from catwalk.checks.server_reach import quiet_if_unverified, request_failure
from catwalk.checks.v2_checks import check_v2
from catwalk.model import LoadedModel
from catwalk.normalize import DEFAULT_TOLERANCE, first_difference

# Re-exported (public): tests and bench scripts take a free loopback port from here.
from catwalk.ports import free_port as free_port

#: Seconds each answer may take when the caller gives no timeout.
ANSWER_TIMEOUT = 10.0


def check_server(
    base_url: str,
    model: LoadedModel,
    data: TestData,
    report: Report,
    *,
    verify: bool | str = True,
    timeout: float = ANSWER_TIMEOUT,
    tolerance: float = DEFAULT_TOLERANCE,
    token: str | None = None,
    repository: bool = False,
) -> None:
    """Check the server at ``base_url`` serving ``model``; one report line per check.

    ``repository``: the server serves a model repository, ``model`` among others: its
    requests go to ``/models/{name}/versions/{version}/predict`` and ``/v2/models/{name}/
    versions/{version}``, and ``/info`` lists it among the models.

    ``timeout``: seconds each answer may take (after one timed out, at most
    :data:`ANSWER_TIMEOUT` for the rest); a request that outlasts it (or cannot be sent) fails
    its check with catwalk's own words, never the HTTP library's exception text.

    ``token``: sent as ``Authorization: Bearer <token>`` (a server with ``server.auth``); a
    further check then makes sure a request without it is refused.
    """
    checker = _Checker(base_url, model, data, report, verify, timeout, tolerance, token)
    if repository:
        checker.predict_path = "/models/{}/versions/{}/predict".format(
            *(quote(part, safe="") for part in (model.spec.name, model.spec.version))
        )
    with checker.session, quiet_if_unverified(verify):
        for check in checker.checks():
            try:
                check()
            except requests.RequestException as exc:
                report.fail(checker.current, request_failure(exc, checker.timeout))
                if isinstance(exc, requests.Timeout):
                    # One check waited the whole timeout: the next ones wait less, so that a
                    # stuck model costs one long wait, not one per check.
                    checker.timeout = min(checker.timeout, ANSWER_TIMEOUT)
            except _Failed as failed:
                report.fail(checker.current, str(failed))
        # The same server's Open Inference Protocol surface (/v2).
        check_v2(
            base_url, model, data, report, checker.session,
            verify=verify, timeout=checker.timeout, tolerance=tolerance, versioned=repository,
        )  # fmt: skip


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
        self.predict_path = "/predict"  # a repository's: this model's own path

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

    def _post(self, body: bytes | dict[str, Any], path: str | None = None) -> requests.Response:
        url = self.base + (path or self.predict_path)
        if isinstance(body, dict):
            return self.session.post(url, json=body, timeout=self.timeout, verify=self.verify)
        headers = {"Content-Type": "application/json"}
        return self.session.post(
            url,
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
        if self.predict_path != "/predict":  # a repository: this model among its models
            found = [m for m in body.get("models", []) if m.get("version") == self.spec.version]
            found = [m for m in found if m.get("name") == self.spec.name]
            if not found:
                raise _Failed(f"{self.spec.name} {self.spec.version} is not among its models")
            body = {k: v for k, v in found[0].items() if k != "default"}
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
        body = {"model": ref, "input": self.first_input}
        message = self._error(self._post(body, "/predict"), 404)
        self.report.ok(self.current, message)

    def wrong_version(self) -> None:
        self._start("POST /predict: wrong model version -> 404")
        ref = {"name": self.spec.name, "version": self.spec.version + "-other"}
        body = {"model": ref, "input": self.first_input}
        message = self._error(self._post(body, "/predict"), 404)
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
                    self.base + self.predict_path,
                    json={"correlation_id": correlation_id, "input": x},
                    headers=self.session.headers,
                    timeout=self.timeout,
                    verify=self.verify,
                )
                body = self._json(response, 200)
            except requests.RequestException as exc:
                return f"{correlation_id}: {request_failure(exc, self.timeout)}"
            except _Failed as exc:
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
            self.base + self.predict_path,
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
