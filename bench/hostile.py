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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import cmdline, free_port, tree  # noqa: E402 - bench/run.py's process helpers

ROOT = HERE.parent
MODELS = {
    "batch": ROOT / "example_models" / "batch",
    "rng": ROOT / "example_models" / "rng",
    "keywords": ROOT / "tests" / "models" / "keywords",
    "leaky": ROOT / "tests" / "server" / "production" / "models" / "leaky",
}
# Extra application.yml lines for a model's server (under server:).
CONFIG = {"leaky": "  max_worker_memory: 300m\n"}
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


def raw(request: bytes) -> Send:
    """A case that sends ``request`` as it is (headers no HTTP client would send)."""

    def send(server: Server, timeout: float) -> tuple[int, bytes]:
        with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as conn:
            conn.sendall(request.replace(b"\r\n", b"\r\nConnection: close\r\n", 1))
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
        return status, body

    return send


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # RST
    conn.close()


def trickle(connections: int, seconds: float) -> Send:
    """``connections`` slow clients from 127.0.0.2/.3 (half trickle a body one byte at a
    time, half never finish their header) while a normal client on 127.0.0.1 keeps asking;
    the answer sums up the normal client's replies and nginx's 429s."""

    def send(server: Server, timeout: float) -> tuple[int, bytes]:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, connections + 200)), hard))
        slow: list[socket.socket] = []
        try:
            for i in range(connections):
                conn = socket.socket()
                conn.bind(("127.0.0.2" if i % 2 else "127.0.0.3", 0))
                conn.connect(("127.0.0.1", server.port))
                head = b"POST /predict HTTP/1.1\r\nHost: x\r\n"
                conn.sendall(head + b"Content-Length: 99999\r\n\r\n{" if i % 2 else head)
                slow.append(conn)
            statuses, worst, ends = [], 0.0, time.monotonic() + seconds
            while time.monotonic() < ends:
                asked = time.monotonic()
                try:
                    status, _ = post(envelope(RNG_INPUT))(server, timeout)
                except OSError:
                    status = 0
                statuses.append(status)
                worst = max(worst, time.monotonic() - asked)
                for conn in slow[1::2]:
                    with contextlib.suppress(OSError):
                        conn.send(b" ")
                time.sleep(0.05)
            refused = 0
            for conn in slow[1::2]:
                conn.setblocking(False)
                with contextlib.suppress(OSError):
                    refused += conn.recv(64).startswith(b"HTTP/1.1 429")
        finally:
            for conn in slow:
                _reset(conn)
        ok = statuses.count(200)
        summary = f"normal client: {ok}/{len(statuses)} 200, slowest {worst:.3f} s; "
        summary += f"{refused} of {connections // 2} body tricklers got 429"
        return (200 if ok == len(statuses) else 503), summary.encode()

    return send


def leak(requests: int, mb: int) -> Send:
    """``requests`` requests each leaking ``mb`` MiB; the answer says how many failed, how
    many workers answered, and the memory of the one answering last."""

    def send(server: Server, timeout: float) -> tuple[int, bytes]:
        pids, failed = [], 0
        for _ in range(requests):
            status, body = post(envelope({"mb": mb}))(server, timeout)
            if status != 200:
                failed += 1
                continue
            pids.append(orjson.loads(body)["output"]["pid"])
        status, body = post(envelope({"mb": 0}))(server, timeout)
        last = orjson.loads(body)["output"]["pid"] if status == 200 else 0
        summary = f"{failed} failed, {len(set(pids))} workers answered; "
        summary += f"last worker RSS {status_kib(last, 'VmRSS') / 1024:.0f} MiB"
        return (200 if not failed else 500), summary.encode()

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
    Case("slow_clients", "rng", trickle(2000, 5),
         "2,000 slow connections from 127.0.0.2-3; a normal client's replies meanwhile"),
    Case("header_control_char", "rng",
         raw(b"GET /status HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n"),
         "a \\x01 in a header value (gunicorn refuses it)"),
    Case("headers_101", "rng",
         raw(b"GET /status HTTP/1.1\r\nHost: x\r\n"
             + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n"),
         "101 headers (gunicorn's default limit is 100)"),
    Case("headers_8000", "rng",
         raw(b"GET /status HTTP/1.1\r\nHost: x\r\n" + b"X: 1\r\n" * 8000 + b"\r\n"),
         "8,000 headers (48 KB)"),
    Case("header_9k", "rng",
         raw(b"GET /status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"),
         "one 9 KB header line"),
    Case("uri_9k", "rng", raw(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
         "a 9 KB request line"),
    Case("options", "rng", raw(b"OPTIONS /predict HTTP/1.1\r\nHost: x\r\n\r\n"),
         "OPTIONS /predict"),
    Case("leaking_model", "leaky", leak(12, 32),
         "12 requests each leaking 32 MiB, server.max_worker_memory: 300m"),
]  # fmt: skip


def parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


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
    extra = CONFIG.get(next((k for k, v in MODELS.items() if v == model), ""), "")
    config.write_text(f"server:\n  workers: 1\n  timeout: {int(timeout) + 30}\n{extra}")
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
    """The gunicorn worker: a process of the app's module whose parent is one too."""
    found = {p for p in tree(server.proc.pid) if "catwalk.server.worker.wsgi" in cmdline(p)}
    workers = [p for p in found if parent(p) in found]
    return max(workers) if workers else None


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
