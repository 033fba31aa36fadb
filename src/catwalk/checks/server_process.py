"""test-server's own server: ``catwalk serve`` on a free port (:class:`ServerProcess`).

:func:`test_server` checks a given ``--url``, or starts the model's server, runs the HTTP checks
of :mod:`catwalk.checks.server_checks` against it, and always stops it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path

from catwalk.checks.model_checks import MODEL_STEPS, TestData
from catwalk.checks.report import Report
from catwalk.checks.server_checks import ANSWER_TIMEOUT, check_server
from catwalk.checks.server_reach import unreachable, wait_ready
from catwalk.errors import CatwalkError
from catwalk.model import LoadedModel
from catwalk.normalize import DEFAULT_TOLERANCE
from catwalk.ports import free_port

STOP_TIMEOUT = 10.0
_LOG_TAIL_LINES = 40
# The environment variables `catwalk serve` lets override its arguments: a server started by
# test-server must use the arguments it is given, whatever the caller's environment says.
_OVERRIDE_VARS = ("MODEL_PATH", "SERVER_CONFIG", "SERVER_PORT", "RUN_TESTS")


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
    timeout: float | None = None,
) -> None:
    """Check ``url``, or start the model's own server and check it; report every step.

    ``timeout``: seconds to wait for each answer, and at least as long for the server to start
    (None: :data:`~catwalk.checks.server_checks.ANSWER_TIMEOUT` each).
    """
    if timeout is not None:
        ready_timeout = max(ready_timeout, timeout)
    check = partial(
        check_server,
        model=model,
        data=data,
        report=report,
        verify=verify,
        tolerance=tolerance,
        token=token,
        timeout=timeout if timeout is not None else ANSWER_TIMEOUT,
    )
    if url is not None:
        problem = unreachable(url, verify=verify)
        if problem is not None:
            report.fail(f"{step}. server", f"server not reachable at {url}: {problem}")
            return
        report.ok(f"{step}. server", f"checking {url} (already running)")
        check(url)
        return
    with started_server(
        model.spec.path,
        report,
        step=step,
        server_config=server_config,
        scheme=scheme,
        debug=debug,
        verify=verify,
        ready_timeout=ready_timeout,
    ) as base_url:
        if base_url is not None:
            check(base_url)


@contextmanager
def started_server(
    serve_path: str | Path,
    report: Report,
    *,
    step: int,
    server_config: str | Path | None,
    scheme: str,
    debug: bool,
    verify: bool | str,
    ready_timeout: float,
    watched: Sequence[Report] = (),
) -> Iterator[str | None]:
    """``catwalk serve -m serve_path`` on a free port for the block: its base URL (None when it
    did not start); steps ``step`` (starts) and ``step + 1`` (stops) are reported in
    ``report``, and the server's log is shown when one of ``watched`` (default: ``report``)
    failed."""
    mode = "debug" if debug else "production"
    port = free_port()
    server = ServerProcess(serve_path, port=port, server_config=server_config, debug=debug)
    base_url = f"{scheme}://127.0.0.1:{port}"
    show_log = started = False
    try:
        server.start()
        try:
            wait_ready(base_url, timeout=ready_timeout, verify=verify, alive=server.alive)
        except CatwalkError as exc:
            report.fail(f"{step}. server starts", f"{mode} server: {exc}")
            show_log = True
            yield None
            return
        started = True
        report.ok(f"{step}. server starts", f"{mode} server answers on {base_url}")
        yield base_url
        show_log = not all(r.passed for r in (watched or [report]))
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
