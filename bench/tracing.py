#!/usr/bin/env python3
"""What tracing costs: rng in production mode at 32 concurrent clients, four servers, one run.

  before    the tree of ``--before`` (``git archive REV src``; default b314574, main's last
            commit before tracing): the code before tracing existed
  off       this tree, tracing off (the default): must cost nothing (>= 0.98x before)
  on-1.0    tracing on, every request sampled, spans exported over OTLP/HTTP to a local
            receiver (a process that reads each export and answers 200): >= 0.85x off
  on-0.01   tracing on, tracing.sample_ratio 0.01

Each server has ``--workers`` gunicorn workers behind nginx; wrk (``taskset -c 1 wrk -t1
-c32``) drives one at a time, ``--rounds`` interleaved rounds of ``--duration`` seconds, the
best round of each kept (the host is shared: noise only ever slows a round). The on-1.0
server's /metrics is read at the end: a dropped span would mean the exporter did not keep up.

First, in process (no sockets, the WSGI app called directly, best of many short rounds), what
one ``POST /predict`` costs: tracing off; on at ratio 1.0 and 0.01, its spans made and handed
to an exporter that drops them; and what the OTLP exporter's thread then spends encoding one
request's spans (protobuf, as sent). This says where the time of a traced request goes.

``--in-process-only`` runs just that part (no server, no socket: it can run while other
work uses the host), for the ``--before`` tree (one with tracing, e.g. 787830f, before the
per-span cuts) and this one side by side, each in its own child
processes, interleaved; it also says what the SDK's own floor is: one span made by the SDK
and encoded by its OTLP exporter.

Usage: .venv/bin/python bench/tracing.py [--conns 32] [--duration 10] [--rounds 3]
       [--workers 2] [--out DIR] [--in-process-only] [--before REV]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# bench/metrics_overhead.py (this script's folder): wrk at one core, the free port helper.
from metrics_overhead import free_port, wrk
from run import archived_src

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RNG = ROOT / "example_models" / "rng"
SCORE = "0.9417154046806644"
BEFORE = "b314574"  # main's last commit before tracing
BODY = json.dumps({"input": {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}}).encode()
UNSAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"  # a client's, not sampled
# An OTLP/HTTP endpoint that reads what it is sent and answers 200 (a collector's receiver
# without the rest of the collector).
RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def in_process(number: int) -> dict[str, float]:
    """µs per POST /predict through the WSGI app (see the module docstring)."""
    import logging
    import timeit
    from typing import Any

    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from wsgi_environ import predict_environ  # bench/wsgi_environ.py

    from catwalk.config import ServerSettings
    from catwalk.model import load_model
    from catwalk.server.app import create_app
    from catwalk.server.logs import configure_logging
    from catwalk.spec import load_spec
    from catwalk.tracing.settings import TracingSettings

    class Dropped(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    configure_logging("INFO")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(io.StringIO())  # the log line's formatting, not a terminal

    def app(ratio: float | None, exporter: Any = None) -> Any:
        tracing = TracingSettings(enabled=ratio is not None, sample_ratio=ratio or 1.0)
        made = create_app(load_model(load_spec(RNG)), ServerSettings(tracing=tracing))
        if made.tracing is not None:
            made.tracing.start(exporter=exporter)
        return made

    apps = {
        "off": app(None),
        "on, ratio 1.0": app(1.0, Dropped()),
        "on, ratio 0.01": app(0.01, Dropped()),
        # what upstream head sampling sends most requests with: a trace not to sample
        "on, client's unsampled traceparent": app(1.0, Dropped()),
    }
    headers = {"on, client's unsampled traceparent": {"HTTP_TRACEPARENT": UNSAMPLED}}

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        assert status.startswith("200"), status

    def environ(name: str) -> dict[str, Any]:
        made: dict[str, Any] = predict_environ(BODY)
        made.update(headers.get(name, {}))
        return made

    best: dict[str, float] = {}
    chunk = max(number // 20, 100)
    for _ in range(20):
        for name, one in apps.items():
            seconds = timeit.timeit(
                lambda one=one, name=name: b"".join(one(environ(name), start_response)),
                number=chunk,
            )
            us = seconds / chunk * 1e6
            best[name] = min(best.get(name, us), us)
    for one in apps.values():
        if one.tracing is not None:
            one.tracing.flush()
    # What the exporter's thread then spends on each request's spans: OTLP's protobuf encoding.
    kept = InMemorySpanExporter()
    traced = app(1.0, kept)
    for _ in range(1000):
        b"".join(traced(predict_environ(BODY), start_response))
    traced.tracing.runtime.queue.force_flush()
    spans = kept.get_finished_spans()
    encoding = min(
        timeit.repeat(lambda: encode_spans(spans).SerializePartialToString(), number=1, repeat=20)
    )
    best["OTLP encoding of its spans"] = encoding / 1000 * 1e6
    traced.tracing.flush()
    best.update(sdk_floor(number))
    return best


def sdk_floor(number: int) -> dict[str, float]:
    """µs of one span (no attributes) made by the SDK's tracer (its default sampler, a
    processor that keeps nothing) and of its encoding by the OTLP exporter: below these no
    traced request can go while it makes SDK spans."""
    import timeit
    from typing import Any

    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

    ended: list[ReadableSpan] = []

    class Keep(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            if not ended:
                ended.append(span)

    provider = TracerProvider(resource=Resource.create({}), shutdown_on_exit=False)
    provider.add_span_processor(Keep())
    tracer = provider.get_tracer("floor")

    def make() -> Any:
        return tracer.start_span("span").end()

    made = min(timeit.repeat(make, number=number // 10, repeat=10)) / (number // 10) * 1e6
    batch = ended * 512  # one export's worth (the SDK's max_export_batch_size): per span
    encoded = min(
        timeit.repeat(lambda: encode_spans(batch).SerializePartialToString(), number=1, repeat=20)
    ) / len(batch) * 1e6  # fmt: skip
    return {
        "SDK floor: one span made": made,
        "SDK floor: its OTLP encoding": encoded,
        "SDK floor: one span made by the SDK and encoded by its exporter": made + encoded,
    }


# One POST /predict through the WSGI app of whichever catwalk PYTHONPATH names, tracing off
# (the tree before tracing has none at all): best of 10 rounds, µs.
OFF_IN_CHILD = """
import io, logging, sys, timeit
sys.path.insert(0, sys.argv[2])
from wsgi_environ import predict_environ
from catwalk.config import ServerSettings
from catwalk.model import load_model
from catwalk.server.app import create_app
from catwalk.server.logs import configure_logging
from catwalk.spec import load_spec
configure_logging("INFO")
for handler in logging.getLogger().handlers:
    handler.setStream(io.StringIO())
app = create_app(load_model(load_spec(sys.argv[1])), ServerSettings())
body = sys.argv[3].encode()
def start_response(status, headers, exc_info=None):
    assert status.startswith("200"), status
def once():
    return b"".join(app(predict_environ(body), start_response))
n = int(sys.argv[4])
print(min(timeit.repeat(once, number=n, repeat=10)) / n * 1e6)
"""


def off_in_process(sources: dict[str, Path], number: int) -> dict[str, float]:
    """µs per POST /predict, tracing off, for each tree: interleaved child processes."""
    best: dict[str, float] = {}
    for _ in range(5):
        for name, src in sources.items():
            out = subprocess.run(
                [sys.executable, "-c", OFF_IN_CHILD, str(RNG), str(HERE), BODY.decode(),
                 str(number // 10)],
                env={**os.environ, "PYTHONPATH": str(src)},
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            us = float(out.strip().splitlines()[-1])
            best[name] = min(best.get(name, us), us)
    return best


def compare_in_process(args: argparse.Namespace, rounds: int = 3) -> str:
    """The in-process figures of the ``--before`` tree and of this one, as a table: each tree in
    ``rounds`` child processes (interleaved), the best figure of each kept."""
    out = args.out or Path(tempfile.mkdtemp(prefix="catwalk-bench-tracing-"))
    before = f"before ({args.before})"
    trees = {before: archived_src(args.before, out / "before"), "this tree": ROOT / "src"}
    best: dict[str, dict[str, float]] = {name: {} for name in trees}
    for _ in range(rounds):
        for name, src in trees.items():
            done = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--in-process-child",
                 "--number", str(args.number)],
                env={**os.environ, "PYTHONPATH": str(src)},
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            for key, us in json.loads(done.stdout.strip().splitlines()[-1]).items():
                best[name][key] = min(best[name].get(key, us), us)
            print(f"{name}: {json.dumps(best[name])}", file=sys.stderr)
    keys = list(best["this tree"])
    lines = [
        "In process, one POST /predict of rng through the WSGI app (µs, best of "
        f"{rounds} child processes x 20 rounds; spans handed to an exporter that drops them):",
        "",
        f"| | {before} | this tree |",
        "|---|---:|---:|",
    ]
    for key in keys:
        cells = [f"{best[name][key]:.1f}" if key in best[name] else "" for name in trees]
        lines.append(f"| {key} | {' | '.join(cells)} |")
    return "\n".join(lines)


def start(
    name: str, src: Path, config: str, extra: dict[str, str], out: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    path = out / f"{name}.yml"
    path.write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    for variable in ("MODEL_PATH", "SERVER_CONFIG", "SERVER_PORT", "SERVER_WORKERS"):
        env.pop(variable, None)
    env["PATH"] = env.get("PATH", "") + ":/usr/sbin"
    env["PYTHONPATH"] = str(src)
    env.update(extra)
    log = open(out / f"server-{name}.log", "w")  # noqa: SIM115 - the child's
    proc = subprocess.Popen(
        [sys.executable, "-m", "catwalk", "serve", "--no-install", "-m", str(RNG),
         "--server-port", str(port), "--server-config", str(path)],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
    )  # fmt: skip
    return proc, port


def wait_ready(proc: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on {port} exited with {proc.returncode}")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict",
            data=BODY,
            headers={"Content-Type": "application/json"},
        )
        with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=2) as answer:
            if SCORE in answer.read().decode():
                return
        time.sleep(0.3)
    raise SystemExit(f"server on {port} not ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def dropped(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    found = re.search(r"^catwalk_trace_spans_dropped_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conns", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--number", type=int, default=20000, help="in-process requests")
    parser.add_argument(
        "--in-process-only",
        action="store_true",
        help="only the in-process figures, the --before tree and this one (no server started)",
    )
    parser.add_argument(
        "--before",
        default=BEFORE,
        help=f"the commit whose tree is the reference (default {BEFORE}: before tracing)",
    )
    parser.add_argument("--in-process-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process_child:  # one tree's figures (PYTHONPATH names it), as JSON
        print(json.dumps(in_process(args.number)))
        return 0
    if args.in_process_only:
        print(compare_in_process(args))
        return 0
    out = args.out or Path(tempfile.mkdtemp(prefix="catwalk-bench-tracing-"))
    out.mkdir(parents=True, exist_ok=True)
    main_src = archived_src(args.before, out / "before")
    micro = off_in_process(
        {f"before ({args.before})": main_src, "this tree, off": ROOT / "src"}, args.number
    )
    micro.update(in_process(args.number))
    for name, us in micro.items():
        print(f"in process: {name:18} {us:7.1f} µs/request", file=sys.stderr)
    body_file = out / "body.json"
    body_file.write_bytes(BODY)
    receiver_port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(receiver_port)])
    server = f"server:\n  workers: {args.workers}\n"
    traced = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver_port}"}
    variants = {
        "main": (main_src, server, {}),
        "off": (ROOT / "src", server, {}),
        "on-1.0": (ROOT / "src", server + "tracing:\n  enabled: true\n", traced),
        "on-0.01": (
            ROOT / "src",
            server + "tracing:\n  enabled: true\n  sample_ratio: 0.01\n",
            traced,
        ),
    }
    servers = {name: start(name, *v, out) for name, v in variants.items()}
    best: dict[str, float] = {}
    drops = 0.0
    try:
        for proc, port in servers.values():
            wait_ready(proc, port)
        for _, port in servers.values():  # warm-up
            wrk(port, args.conns, 2, body_file)
        for round_ in range(args.rounds):
            for name, (_, port) in servers.items():
                rps = wrk(port, args.conns, args.duration, body_file)
                best[name] = max(best.get(name, 0.0), rps)
                print(f"round {round_ + 1} {name:8} {rps:9.0f} req/s", file=sys.stderr)
        drops = dropped(servers["on-1.0"][1])
    finally:
        for proc, _ in servers.values():
            stop(proc)
        receiver.terminate()
        receiver.wait()
    print(report(best, drops, args, micro))
    return 0


def report(
    best: dict[str, float], drops: float, args: argparse.Namespace, micro: dict[str, float]
) -> str:
    off_main = best["off"] / best["main"]
    on_off = best["on-1.0"] / best["off"]
    low_off = best["on-0.01"] / best["off"]
    lines = [
        f"rng, {args.workers} workers, wrk -c{args.conns}, best of {args.rounds} x "
        f"{args.duration} s (req/s):",
        "",
        "| variant | req/s | ratio |",
        "|---|---|---|",
        f"| before tracing ({args.before}) | {best['main']:.0f} | 1.00x before |",
        f"| tracing off | {best['off']:.0f} | {off_main:.3f}x before (target >= 0.98) "
        f"{'met' if off_main >= 0.98 else 'NOT met'} |",
        f"| tracing on, ratio 1.0 | {best['on-1.0']:.0f} | {on_off:.3f}x off (target >= 0.85) "
        f"{'met' if on_off >= 0.85 else 'NOT met'} |",
        f"| tracing on, ratio 0.01 | {best['on-0.01']:.0f} | {low_off:.3f}x off |",
        "",
        f"spans dropped by the ratio-1.0 server: {drops:.0f}",
        "",
        "In process, one POST /predict (best of many rounds, µs; the --before tree and this one in "
        "child processes, tracing off):",
        "",
        "| | µs/request |",
        "|---|---|",
        *(f"| {name} | {us:.1f} |" for name, us in micro.items()),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
