"""Hostile request bodies against real nginx + gunicorn: each is a quick JSON 400 (or the
right 200), the worker's memory stays flat, and the same worker keeps serving."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import requests
from served import RNG, RNG_INPUT, ROOT, Server, write_config

Serve = Callable[..., Server]
BATCH = ROOT / "example_models" / "batch"
KEYWORDS = ROOT / "tests" / "models" / "keywords"
LONG = b"12345678901234567890123"
MiB = 1024 * 1024


def nest(levels: int) -> bytes:
    return b'{"a":' * levels + b"1" + b"}" * levels


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


class Worker:
    """The one gunicorn worker of a ``workers: 1`` server, and its peak memory."""

    def __init__(self, server: Server) -> None:
        pids = server.wait_pids("catwalk.server.worker.wsgi", 2)
        parents = {
            int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[1]) for p in pids
        }
        (self.pid,) = [p for p in pids if p not in parents]

    def reset_peak(self) -> int:
        # Writing 5 resets VmHWM (the peak RSS) to the current RSS (root, as CI runs).
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        return status_kib(self.pid, "VmRSS") * 1024

    def peak(self) -> int:
        return status_kib(self.pid, "VmHWM") * 1024

    def rss(self) -> int:
        return status_kib(self.pid, "VmRSS") * 1024


def post(server: Server, body: bytes) -> tuple[requests.Response, float]:
    started = time.monotonic()
    reply = requests.post(
        server.url + "/predict",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    return reply, time.monotonic() - started


def json_error(reply: requests.Response) -> str:
    assert reply.headers["Content-Type"].startswith("application/json"), reply.text[:200]
    answer = reply.json()
    assert isinstance(answer["correlation_id"], str) and answer["correlation_id"]
    message: str = answer["output"]["message"]
    return message


def config(tmp_path: Path, extra: str = "") -> Path:
    return write_config(tmp_path, "server:\n  workers: 1\n" + extra)


def test_a_1mb_invalid_batch_is_a_quick_400_without_memory_growth(
    serve: Serve, tmp_path: Path
) -> None:
    server = serve(BATCH, config=config(tmp_path))
    worker = Worker(server)
    body = b'{"input": [' + b",".join([b"1"] * 500_000) + b"]}"  # 1 MB, maxItems 1000
    before = worker.reset_peak()
    reply, seconds = post(server, body)
    assert reply.status_code == 400
    assert json_error(reply).endswith("is too long (at most 1000 items)")
    assert seconds < 1  # was 24-30 s
    assert worker.peak() - before < 50 * MiB  # was 1.5 GiB
    assert worker.rss() - before < 50 * MiB
    ok = server.post("/predict", json={"input": [RNG_INPUT]})
    assert ok.status_code == 200 and Worker(server).pid == worker.pid


CASES = [
    ("uniqueItems over 4,000 objects + one bad field",
     orjson.dumps({"input": {"tags": [{"k": i} for i in range(4000)] + [{"k": "x"}]}}),
     400, "input.tags[4000].k: \"x\" is not of type 'integer'"),
    ("email format on 200 KB of dots", orjson.dumps({"input": {"email": "." * 200_000}}),
     400, "is not a valid email"),
    ("a backtracking pattern", orjson.dumps({"input": {"code": "a" * 50_000 + "!"}}),
     400, "does not match the pattern ^(a+)+$"),
    ("an input field nested 960 levels", b'{"input": {"free": ' + nest(960) + b"}}",
     400, "body: nested more than 64 levels deep (the limit, server.limits.max_depth)"),
    ("1,100 levels and a long number",
     b'{"input": {"count": ' + LONG + b', "free": ' + b"[" * 1100 + b"]" * 1100 + b"}}",
     400, "body: nested more than 64 levels deep"),
    ("a lone surrogate and a long number",
     b'{"input": {"level": "\\ud800", "count": ' + LONG + b"}}",
     400, "body: not valid JSON"),
    ("a lone-surrogate correlation_id on a plain 400",
     b'{"correlation_id": "\\ud800", "input": {"count": "x", "step": ' + LONG + b"}}",
     400, "body: not valid JSON"),
    ("int32 against a 4,000-digit integer", b'{"input": {"count": 1' + b"0" * 4000 + b"}}",
     400, "is greater than the maximum of 2147483647"),
    # Every integer is a multiple of 0.5: the right answer is 200 (it was a 500).
    ("float multipleOf against a 401-digit integer",
     b'{"input": {"step": 1' + b"0" * 400 + b"}}", 200, None),
    ("anyOf over a 300,000-item array", orjson.dumps({"input": {"choice": [1, "x"] * 150_000}}),
     400, "input.choice: [1, \"x\", 1, \"x\""),
    ("100,000 properties against maxProperties 16",
     orjson.dumps({"input": {"labels": {str(i): str(i) for i in range(100_000)}}}),
     400, "has too many properties (at most 16)"),
]  # fmt: skip


def test_hostile_bodies_are_quick_json_answers_and_the_worker_survives(
    serve: Serve, tmp_path: Path
) -> None:
    server = serve(KEYWORDS, config=config(tmp_path))
    worker = Worker(server)
    start_rss = worker.rss()
    for what, body, status, expected in CASES:
        before = worker.reset_peak()
        reply, seconds = post(server, body)
        assert reply.status_code == status, (what, reply.text[:300])
        if status == 400:
            assert expected is not None and expected in json_error(reply), what
        else:
            assert json.loads(reply.text)["input"] == json.loads(body)["input"], what
        assert seconds < 1, (what, seconds)
        assert worker.peak() - before < 50 * MiB, what
    assert worker.rss() - start_rss < 50 * MiB
    assert server.get("/status").status_code == 200
    assert Worker(server).pid == worker.pid  # no worker was killed or recycled


def test_max_depth_is_configurable_in_production(serve: Serve, tmp_path: Path) -> None:
    server = serve(RNG, config=config(tmp_path, "  limits:\n    max_depth: 8\n"))
    shallow = b'{"input": ' + orjson.dumps(RNG_INPUT) + b', "extra_data": ' + nest(7) + b"}"
    assert post(server, shallow)[0].status_code == 200
    deep = b'{"input": ' + orjson.dumps(RNG_INPUT) + b', "extra_data": ' + nest(970) + b"}"
    reply, seconds = post(server, deep)
    assert reply.status_code == 400 and seconds < 1
    assert json_error(reply) == (
        "body: nested more than 8 levels deep (the limit, server.limits.max_depth)"
    )


def test_deep_extra_data_with_the_default_limit(serve: Serve) -> None:
    server = serve(RNG)
    body = b'{"input": ' + orjson.dumps(RNG_INPUT) + b', "extra_data": ' + nest(970) + b"}"
    reply, _ = post(server, body)
    assert reply.status_code == 400  # was a 500 RecursionError
    assert "server.limits.max_depth" in json_error(reply)
