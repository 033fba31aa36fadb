#!/usr/bin/env python3
"""The Open Inference Protocol (/v2) against /predict, side by side on the same servers.

1. rng (unbatched), ``catwalk serve`` with its defaults: one record per request at c=32
   (and c=1), as ``POST /predict`` (the envelope), as ``POST /v2/models/RNGModel/infer`` with
   JSON tensors, and with binary tensors both ways (tritonclient's default form:
   ``binary_data_size`` inputs, ``binary_data_output``). Target: v2 >= 0.9x /predict's req/s.
2. forest (``batching:`` on, max_batch_size 32): 64 records as ONE v2 infer request (binary
   tensors) against 64 ``/predict`` requests (c=64, one record each); compared in records/s.

Same wrk settings and noise handling as bench/run.py (whose Server, measure and Row it uses):
each measured run is repeated while other processes used more than ``--other-max`` cores,
the systems are interleaved over ``--rounds``, and the quietest attempt is kept; the table
says how loaded the host was (``other cores``, and the load average before and after).

Usage: .venv/bin/python bench/protocol.py [--duration 10] [--warmup 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402  (bench/run.py: Server, measure, Row)

ROOT = HERE.parent
FOREST = ROOT / "example_models" / "forest"
RNG_RECORD = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}
RNG_TYPES = {"seed": "INT64", "seed_version": "INT64", "mu": "FP64", "sigma": "FP64"}
CODES = {"INT64": "q", "FP64": "d"}


def v2_body(
    records: list[dict[str, Any]], types: dict[str, str], binary: bool
) -> tuple[bytes, int]:
    """An inference request of ``records`` and its JSON part's length; binary: as tritonclient
    sends it by default."""
    inputs, chunks = [], []
    for name, datatype in types.items():
        column = [record[name] for record in records]
        tensor: dict[str, Any] = {"name": name, "shape": [len(records)], "datatype": datatype}
        if binary:
            chunk = struct.pack(f"<{len(column)}{CODES[datatype]}", *column)
            tensor["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            tensor["data"] = column
        inputs.append(tensor)
    request: dict[str, Any] = {"inputs": inputs}
    if binary:
        request["parameters"] = {"binary_data_output": True}
    header = json.dumps(request, separators=(",", ":")).encode()  # compact, as tritonclient
    return header + b"".join(chunks), len(header)


class Case:
    """One way of asking the same server: a URL, a body file and its headers."""

    def __init__(self, name: str, path: str, body: bytes, header_length: int | None = None):
        self.name, self.path, self.header_length = name, path, header_length
        self.file = bench.OUT / ("body-" + "".join(c if c.isalnum() else "-" for c in name))
        self.file.write_bytes(body)

    def use(self, server: bench.Server) -> None:
        server.name = self.name
        server.url = f"http://127.0.0.1:{server.port}{self.path}"
        server.body = self.file
        binary = self.header_length is not None
        os.environ["WRK_CONTENT_TYPE"] = (
            "application/octet-stream" if binary else "application/json"
        )
        os.environ["WRK_HEADER_LENGTH"] = str(self.header_length) if binary else ""


def binary_case(name: str, path: str, records: list[dict[str, Any]], types: dict[str, str]) -> Case:
    body, header = v2_body(records, types, True)
    return Case(name, path, body, header)


def serve(model: Path) -> bench.Server:
    port = bench.free_port()
    args = [sys.executable, "-m", "catwalk", "serve", "--no-install", "-m", str(model),
            "--server-port", str(port)]  # fmt: skip
    server = bench.Server(f"serve-{model.name}", args, port, HERE / "payloads" / "catwalk.json",
                          bench.python_env())  # fmt: skip
    return server


def wait(server: bench.Server, body: bytes, path: str, timeout: float = 90) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{server.port}{path}", data=body,
                headers={"Content-Type": "application/json"},
            )  # fmt: skip
            with urllib.request.urlopen(request, timeout=5) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{server.name}: no 200 on {path} after {timeout} s")


def measure_cases(
    model: Path, cases: list[tuple[Case, int]], args: argparse.Namespace, ready: tuple[bytes, str]
) -> dict[tuple[str, int], list[bench.Row]]:
    measured: dict[tuple[str, int], list[bench.Row]] = {}
    server = serve(model)
    try:
        wait(server, *ready)
        for _ in range(args.rounds):
            for case, conns in cases:
                case.use(server)
                measured.setdefault((case.name, conns), []).append(
                    bench.measure(server, conns, args)
                )
    finally:
        server.stop()
    return measured


def best(attempts: list[bench.Row]) -> bench.Row:
    row = min(attempts, key=lambda r: (r.other_cores, -r.rps))
    row.tries = sum(r.tries for r in attempts)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", default=10, type=int)
    parser.add_argument("--warmup", default=3, type=int)
    parser.add_argument("--retries", default=2, type=int)
    parser.add_argument("--rounds", default=2, type=int)
    parser.add_argument("--other-max", default=0.25, type=float)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    bench.OUT = Path(args.out or HERE / "results" / f"protocol-{stamp}")
    bench.OUT.mkdir(parents=True, exist_ok=True)
    bench.WRK_SCRIPT = HERE / "post_v2.lua"
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin"
    load_before = Path("/proc/loadavg").read_text().split()[:3]

    infer = "/v2/models/RNGModel/infer"
    predict = Case("rng-predict", "/predict", json.dumps({"input": RNG_RECORD}).encode())
    v2_json = Case("rng-v2-json", infer, v2_body([RNG_RECORD], RNG_TYPES, False)[0])
    v2_binary = binary_case("rng-v2-binary", infer, [RNG_RECORD], RNG_TYPES)
    rng_cases = [(c, n) for n in (32, 1) for c in (predict, v2_json, v2_binary)]
    rng = measure_cases(bench.RNG, rng_cases, args, (predict.file.read_bytes(), "/predict"))

    sys.path.insert(0, str(ROOT / "src"))
    from catwalk.model import load_model
    from catwalk.normalize import to_json
    from catwalk.spec import load_spec

    model = load_model(load_spec(FOREST))
    records = to_json(model.load_test_data()[0])
    sixty_four = [records[i % len(records)] for i in range(64)]
    forest_types = {name: "FP64" for name in records[0]}
    one = Case("forest-predict", "/predict", json.dumps({"input": records[0]}).encode())
    many = binary_case("forest-v2-64-records", "/v2/models/DiabetesForest/infer", sixty_four,
                       forest_types)  # fmt: skip
    forest_cases = [(one, 64), (many, 1), (many, 2)]
    forest = measure_cases(FOREST, forest_cases, args, (one.file.read_bytes(), "/predict"))
    load_after = Path("/proc/loadavg").read_text().split()[:3]

    rows = {key: best(attempts) for key, attempts in {**rng, **forest}.items()}
    lines = [
        bench.host(),
        f"load average (1, 5, 15 min) before: {' '.join(load_before)}; after: "
        f"{' '.join(load_after)}",
        "",
        "| case | conns | req/s | records/s | p50 ms | p99 ms | errors | other cores | tries |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (name, conns), r in rows.items():
        per = 64 if "64-records" in name else 1
        lines.append(
            f"| {name} | {conns} | {r.rps:,.0f} | {r.rps * per:,.0f} | {r.p50_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.errors} | {r.other_cores:.2f} | {r.tries} |"
        )
    lines.append("")
    ref = rows[("rng-predict", 32)].rps
    for name in ("rng-v2-json", "rng-v2-binary"):
        ratio = rows[(name, 32)].rps / ref if ref else 0.0
        lines.append(
            f"- {name} at c=32: {ratio:.2f}x /predict's req/s (target >= 0.9): "
            f"{bench.met(ratio >= 0.9)}"
        )
    single = rows[("forest-predict", 64)].rps
    for conns in (1, 2):
        batch = rows[("forest-v2-64-records", conns)].rps * 64
        lines.append(
            f"- forest: one 64-record v2 request at a time (c={conns}): {batch:,.0f} records/s "
            f"= {batch / single if single else 0:.2f}x 64 concurrent /predict requests "
            f"({single:,.0f} records/s)"
        )
    text = "\n".join(lines) + "\n"
    (bench.OUT / "table.md").write_text(text)
    print(text)
    print(f"raw outputs: {bench.OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
