#!/usr/bin/env python3
"""catwalk's own per-request cost, in process, on example_models/rng (no HTTP, no sockets).

* **overhead** = ``Predictor.handle(body)`` (what ``POST /predict`` runs: parse the envelope,
  validate input, call the model, normalise, validate output, serialise) minus the user's
  ``predict`` alone. Target: < 50 µs.
* its parts, each timed on its own;
* the whole WSGI app called in process (Flask routing + catwalk + the request log line),
  against bench/bare_app.py, to show where the rest of a request's server-side time goes.

Every figure is the best of ``--repeat`` rounds of ``--number`` calls (timeit), in µs per call.
Usage: .venv/bin/python bench/overhead.py [--number 20000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
import timeit
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bare_app import create_app as create_bare_app  # noqa: E402
from wsgi_environ import predict_environ  # noqa: E402

from catwalk.body_limits import too_deep  # noqa: E402
from catwalk.config import ServerSettings  # noqa: E402
from catwalk.model import load_model  # noqa: E402
from catwalk.server.app import create_app  # noqa: E402
from catwalk.server.envelope import Predictor  # noqa: E402
from catwalk.server.logs import LOGGER_NAME, configure_logging  # noqa: E402
from catwalk.spec import load_spec  # noqa: E402

RNG = HERE.parent / "example_models" / "rng"
X = {"seed": 0, "seed_version": 2, "mu": 0.0, "sigma": 1.0}


def best_us(func: Callable[[], Any], number: int, repeat: int) -> float:
    return min(timeit.repeat(func, number=number, repeat=repeat)) / number * 1e6


def wsgi_call(app: Any, body: bytes) -> Callable[[], Any]:
    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        pass

    def call() -> Any:
        return b"".join(app(predict_environ(body), start_response))

    return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--number", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    n, r = args.number, args.repeat

    model = load_model(load_spec(RNG))
    predictor = Predictor(model, validate_output=True)
    body = orjson.dumps({"input": X})
    _, answer = predictor.handle(body)
    assert b"0.9417154046806644" in answer, answer
    output = model.predict(X)
    response = {"correlation_id": str(uuid.uuid4()), "model": predictor.model_ref, "input": X,
                "output": output}  # fmt: skip

    raw = best_us(lambda: model.instance.predict(X), n, r)
    total = best_us(lambda: predictor.handle(body), n, r)
    parts = {
        "body depth check (server.limits.max_depth)": best_us(lambda: too_deep(body, 64), n, r),
        "orjson.loads(body)": best_us(lambda: orjson.loads(body), n, r),
        "correlation id (uuid4)": best_us(lambda: str(uuid.uuid4()), n, r),
        "input validation": best_us(lambda: model.input_errors(X), n, r),
        "predict + normalise (to_json)": best_us(lambda: model.predict(X), n, r),
        "output validation": best_us(lambda: model.output_errors(output), n, r),
        "orjson.dumps(response)": best_us(lambda: orjson.dumps(response), n, r),
    }
    no_out = Predictor(model, validate_output=False)
    total_no_out = best_us(lambda: no_out.handle(body), n, r)

    print("## catwalk's own per-request overhead (rng, in process)\n")
    print("| step | µs |")
    print("|---|---:|")
    print(f"| user's predict alone | {raw:.1f} |")
    print(f"| Predictor.handle(body), everything | {total:.1f} |")
    print(f"| **overhead = handle - predict** | **{total - raw:.1f}** |")
    print(f"| overhead with validate_output: false | {total_no_out - raw:.1f} |")
    for name, us in parts.items():
        shown = us - raw if name.startswith("predict") else us
        label = "normalise (to_json), predict excluded" if name.startswith("predict") else name
        print(f"| - {label} | {shown:.1f} |")

    # The WSGI apps in process: routing, request/response objects, the request log line.
    settings = ServerSettings()
    sink = io.StringIO()
    configure_logging("INFO")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)  # measure the formatting, not the terminal
    catwalk_app = create_app(model, settings)
    bare_app = create_bare_app(model, settings)
    bare_body = orjson.dumps(X)
    wsgi_catwalk = best_us(wsgi_call(catwalk_app, body), n // 4, r)
    logging.getLogger(LOGGER_NAME).setLevel("WARNING")
    wsgi_catwalk_quiet = best_us(wsgi_call(catwalk_app, body), n // 4, r)
    wsgi_bare = best_us(wsgi_call(bare_app, bare_body), n // 4, r)
    print("\n## The WSGI app called in process (no server, no sockets)\n")
    print("| app | µs per request |")
    print("|---|---:|")
    print(f"| bare Flask app (bench/bare_app.py) | {wsgi_bare:.1f} |")
    print(f"| catwalk app, request log at INFO (default) | {wsgi_catwalk:.1f} |")
    print(f"| catwalk app, request log off (WARNING) | {wsgi_catwalk_quiet:.1f} |")
    print(f"| difference catwalk (INFO) - bare | {wsgi_catwalk - wsgi_bare:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
