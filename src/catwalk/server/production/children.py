"""The supervisor's plumbing: stop signals, child processes, and relaying a child's stderr.

Each child runs in its own session (a terminal's Ctrl-C reaches only the supervisor, which
stops them in order) and gets a parent-death signal, should the supervisor be killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, TextIO

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
_PR_SET_PDEATHSIG = 1


class Signals:
    """Stop signals set a flag; every signal (SIGCHLD too) wakes :meth:`wait` at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._saved: dict[int, object] = {}
        self._saved_fd = -1

    def __enter__(self) -> Signals:
        self._saved_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        for sig in (*STOP_SIGNALS, signal.SIGCHLD):
            self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        signal.set_wakeup_fd(self._saved_fd)
        os.close(self._read)
        os.close(self._write)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGCHLD and self.received is None:
            self.received = signum

    @property
    def stopping(self) -> bool:
        return self.received is not None

    def wait(self, timeout: float) -> None:
        with contextlib.suppress(InterruptedError):
            select.select([self._read], [], [], max(timeout, 0))
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 512):
                pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    status: int | None = field(default=None)  # exit code (128 + n when killed by signal n)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.status is None

    def send(self, sig: int) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def exited(self, wait_status: int) -> None:
        code = os.waitstatus_to_exitcode(wait_status)
        self.status = 128 - code if code < 0 else code
        self.process.returncode = self.status  # Popen must not wait for it again

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        # Each child leads its own process group: this reaches its workers too, e.g. gunicorn
        # workers orphaned by a killed master.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if catwalk is SIGKILLed, the child gets
    # SIGTERM instead of running on as an orphan.
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _die_with_parent_batch_scheduled() -> None:
    """:func:`_die_with_parent`, and the child (and what it forks) scheduled ``SCHED_BATCH``.

    nginx woken by an answer otherwise preempts the worker that wrote it, on every request:
    as a batch process it waits for the worker to yield or for the next tick, and then
    handles every event waiting at once (nginx's context switches drop from ~1.3 to ~0.15
    per request, and the worker keeps its CPU: bench/RESULTS.md). Batch scheduling changes
    no priority: the process keeps its fair share of the CPU. Where the system refuses it
    (another kernel, a seccomp profile), the child runs as it would have.
    """
    _die_with_parent()
    with contextlib.suppress(Exception):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def spawn(
    name: str,
    args: list[str],
    *,
    relay_stderr: bool = False,
    json_lines: bool = False,
    model_fields: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    batch_scheduled: bool = False,
) -> Child:
    """Start a child; ``relay_stderr``: its stderr through :func:`relay` (``json_lines``: each
    line as a JSON object naming the model, ``model_fields``, for ``logging.format: json``);
    ``env``: its environment (ours); ``batch_scheduled``: see
    :func:`_die_with_parent_batch_scheduled`."""
    preexec = _die_with_parent_batch_scheduled if batch_scheduled else _die_with_parent
    process = subprocess.Popen(
        args,
        env=env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE if relay_stderr else None,
        start_new_session=True,
        preexec_fn=preexec if sys.platform == "linux" else None,
    )
    if process.stderr is not None:
        threading.Thread(
            target=relay,
            args=(process.stderr, sys.stderr, json_lines, model_fields),
            name=f"{name}-stderr",
            daemon=True,
        ).start()
    return Child(name, process)


def relay(
    source: IO[bytes],
    target: TextIO,
    json_lines: bool = False,
    model_fields: dict[str, str] | None = None,
) -> None:
    """Copy a child's stderr to ours line by line, non-printable characters escaped.

    nginx's JSON lines escape only ASCII controls, and its error log quotes what clients
    sent: a U+2028 or a bidi override becomes ``\\u2028`` (the same text in JSON), so each
    line stays one line and reads as what it holds. Undecodable bytes become U+FFFD.
    """
    from catwalk.server.logs.jsonlog import nginx_line

    for raw in source:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if json_lines and line.strip():
            # JSON escapes what needs it; a JSON line (nginx's own error answers) passes as is.
            line = nginx_line(line, model_fields)
        if not line.isprintable():
            line = "".join(c if c.isprintable() or c == "\t" else _json_escape(c) for c in line)
        with contextlib.suppress(OSError, ValueError):
            target.write(line + "\n")
            target.flush()
    source.close()


def _json_escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
