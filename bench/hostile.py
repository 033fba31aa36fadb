#!/usr/bin/env python3
"""Hostile requests against a real production server: time and worker memory per request.

Starts ``python -m catwalk serve`` (nginx -> gunicorn, one worker so that its memory is the
request's) for each model the selected cases need, sends each case once and prints, per
case: the HTTP status, the seconds until the answer, the worker's peak RSS during the
request (``VmHWM`` after resetting it through ``/proc/PID/clear_refs``; needs root, else the
RSS after is shown), the RSS it still holds after, and the start of the answer.

A case is a row of :data:`CASES`: a name, the model it is sent to, and a ``send`` function
that gets the server and returns ``(status, answer bytes)``. Most cases only post a body
(:func:`post`); a case needing another client (a slow one, many connections) brings its own
``send``. Add rows; nothing else needs to change.

Usage::

    .venv/bin/python bench/hostile.py                   # every case, this checkout's src/
    .venv/bin/python bench/hostile.py --cases batch_1mb,email_dots
    .venv/bin/python bench/hostile.py --src /tmp/before/src   # another tree (before a fix)

Bounded: each request is given ``--timeout`` seconds (default 120; the worker timeout is set
above it), so a case that hangs is reported as a timeout, not waited for.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    "batch": ROOT / "example_models" / "batch",
    "rng": ROOT / "example_models" / "rng",
    "keywords": ROOT / "tests" / "models" / "keywords",
}
RNG_INPUT = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}
LONG = b"12345678901234567890123"  # 23 digits: the exact-integer parser's path


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def request(
        self, method: str, path: str, body: bytes | None, timeout: float, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            reply = conn.getresponse()
            return reply.status, reply.read()
        finally:
            conn.close()


Send = Callable[[Server, float], tuple[int, bytes]]


def post(body: bytes) -> Send:
    """A case that posts ``body`` to /predict."""

    def send(server: Server, timeout: float) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        return server.request("POST", "/predict", body, timeout, headers)

    return send


def envelope(data: object, **fields: object) -> bytes:
    return orjson.dumps({"input": data, **fields})


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b'{"a":' * depth + leaf + b"}" * depth


@dataclass(frozen=True)
class Case:
    name: str
    model: str  # a key of MODELS
    send: Send
    what: str


CASES = [
    Case("batch_1mb", "batch", post(b'{"input": [' + b",".join([b"1"] * 500_000) + b"]}"),
         "1 MB array of 500,000 ints against maxItems 1000"),
    Case("unique_objects", "keywords",
         post(envelope({"tags": [{"k": i} for i in range(4000)] + [{"k": "x"}]})),
         "uniqueItems over 4,000 objects plus one invalid field"),
    Case("email_dots", "keywords", post(envelope({"email": "." * 200_000})),
         "format: email against 200 KB of dots"),
    Case("pattern_backtrack", "keywords", post(envelope({"code": "a" * 24 + "!"})),
         "pattern ^(a+)+$ against 24 a's and a '!' (2^24 steps in Python's re)"),
    Case("deep_extra_data", "rng",
         post(b'{"input": ' + orjson.dumps(RNG_INPUT) + b', "extra_data": ' + nested(970) + b"}"),
         "extra_data nested 970 levels"),
    Case("deep_input", "keywords", post(b'{"input": {"free": ' + nested(960) + b"}}"),
         "an input field nested 960 levels"),
    Case("deep_long_number", "keywords",
         post(b'{"input": {"count": ' + LONG + b', "free": ' + b"[" * 1100 + b"]" * 1100 + b"}}"),
         "nesting 1,100 levels with a 23-digit number"),
    Case("surrogate_long_number", "keywords",
         post(b'{"input": {"level": "\\ud800", "count": ' + LONG + b"}}"),
         "a lone surrogate with a 23-digit number"),
    Case("surrogate_correlation_id", "keywords",
         post(b'{"correlation_id": "\\ud800", "input": {"count": "x", "step": ' + LONG + b"}}"),
         "a lone-surrogate correlation_id on a plain 400"),
    Case("multipleof_huge", "keywords", post(b'{"input": {"step": 1' + b"0" * 400 + b"}}"),
         "float multipleOf against a 401-digit integer"),
    Case("anyof_wide", "keywords", post(envelope({"choice": [1, "x"] * 150_000})),
         "anyOf over a 300,000-item array, every branch failing"),
    Case("many_properties", "keywords",
         post(envelope({"labels": {str(i): i for i in range(100_000)}})),
         "100,000 properties against maxProperties 16"),
    Case("valid_rng", "rng", post(envelope(RNG_INPUT)), "a valid request (reference)"),
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def tree(pid: int) -> list[int]:
    out, queue = [], [pid]
    while queue:
        for kid in children(queue.pop()):
            out.append(kid)
            queue.append(kid)
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def status_kib(pid: int, field: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(rf"{field}:\s+(\d+)", text)
    return int(found.group(1)) if found else 0


def reset_peak(pid: int) -> bool:
    """Reset the process's peak RSS (VmHWM) to its current RSS; False when not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def start(model: Path, src: Path, timeout: float, folder: Path) -> Server:
    port = free_port()
    config = folder / f"application-{port}.yml"
    # One worker: its memory is the request's. Its timeout lets a slow "before" case finish.
    config.write_text(f"server:\n  workers: 1\n  timeout: {int(timeout) + 30}\n")
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONUNBUFFERED="1")
    if "/usr/sbin" not in env.get("PATH", "").split(":"):
        env["PATH"] = env.get("PATH", "") + ":/usr/sbin"
    log = folder / f"server-{port}.log"
    args = [sys.executable, "-m", "catwalk", "serve", "--no-install", "--model-path", str(model)]
    args += ["--server-port", str(port), "--server-config", str(config)]
    proc = subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    server = Server(port, proc, log)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited {proc.returncode}:\n{log.read_text()}")
        try:
            if server.request("GET", "/status", None, 2, {})[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server not ready after 90 s:\n{log.read_text()}")


def worker(server: Server) -> int | None:
    """The gunicorn worker: a process of the app's module with no children of its own."""
    found = [p for p in tree(server.proc.pid) if "catwalk.server.wsgi" in cmdline(p)]
    leaves = [p for p in found if not children(p)]
    return max(leaves) if leaves else None


def stop(server: Server) -> None:
    pids = tree(server.proc.pid)
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def run_case(server: Server, case: Case, timeout: float) -> str:
    pid = worker(server)
    before = status_kib(pid, "VmRSS") if pid else 0
    peak_known = pid is not None and reset_peak(pid)
    started = time.monotonic()
    try:
        status, answer = case.send(server, timeout)
        shown = answer[:90].decode("utf-8", "replace").replace("\n", " ")
    except (OSError, http.client.HTTPException) as exc:
        status, shown = 0, f"{type(exc).__name__}: {exc}"[:90]
    seconds = time.monotonic() - started
    alive = pid is not None and status_kib(pid, "VmRSS") > 0
    after = status_kib(pid, "VmRSS") if alive and pid else 0
    peak = status_kib(pid, "VmHWM") if alive and pid and peak_known else after
    if not alive:
        memory = "worker gone"
    else:
        memory = f"{(peak - before) / 1024:+8.1f} {(after - before) / 1024:+8.1f}"
    return f"{case.name:26} {status:3} {seconds:8.3f} {memory:>17}  {shown}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="catwalk source tree")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per request")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args()
    if args.list:
        for case in CASES:
            print(f"{case.name:26} {case.model:9} {case.what}")
        return 0
    wanted = set(args.cases.split(",")) if args.cases else None
    cases = [c for c in CASES if wanted is None or c.name in wanted]
    if wanted and len(cases) != len(wanted):
        unknown = wanted - {c.name for c in cases}
        parser.error(f"unknown case(s): {', '.join(sorted(unknown))} (see --list)")
    print(f"src: {args.src}")
    print(f"{'case':26} {'st':3} {'seconds':>8} {'peak MiB':>8} {'held MiB':>8}  answer")
    with tempfile.TemporaryDirectory(prefix="catwalk-hostile-") as tmp:
        for model in dict.fromkeys(c.model for c in cases):
            server = start(MODELS[model], args.src, args.timeout, Path(tmp))
            try:
                for case in (c for c in cases if c.model == model):
                    print(run_case(server, case, args.timeout), flush=True)
                    if server.proc.poll() is not None:  # restart a server a case killed
                        server = start(MODELS[model], args.src, args.timeout, Path(tmp))
            finally:
                stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
