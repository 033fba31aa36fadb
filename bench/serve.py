"""``python bench/serve.py APP PORT [key=value ...]``: production mode with other tuning.

APP is ``catwalk`` (the real app) or ``bare`` (bare_app.py). The key=value pairs set fields
of :class:`catwalk.server.production.render.Tuning` (worker_class, upstream_keepalive,
nginx_workers, nginx_batch_scheduled) or of the settings (workers, log_level, preload,
validate_output), e.g.
``python bench/serve.py bare 18201 worker_class=sync upstream_keepalive=0
nginx_batch_scheduled=false`` (the seed's stack).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from catwalk.config import ServerSettings
from catwalk.server.production.job import DEFAULT_FACTORY
from catwalk.server.production.render import Tuning
from catwalk.server.production.supervisor import serve_production

HERE = Path(__file__).resolve().parent
RNG = HERE.parent / "example_models" / "rng"
FACTORIES = {"catwalk": DEFAULT_FACTORY, "bare": "bare_app:create_app"}


def _value(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    return int(text) if text.isdigit() else text


def main() -> int:
    app, port, *pairs = sys.argv[1:]
    values = dict(pair.split("=", 1) for pair in pairs)
    tuning_keys = {f.name for f in dataclasses.fields(Tuning)}
    tuning = Tuning(**{k: _value(v) for k, v in values.items() if k in tuning_keys})
    settings = ServerSettings(
        port=int(port), **{k: _value(v) for k, v in values.items() if k not in tuning_keys}
    )
    return serve_production(RNG, settings, app_factory=FACTORIES[app], tuning=tuning)


if __name__ == "__main__":
    sys.exit(main())
