"""The Open Inference Protocol's REST paths: which operation a path asks for, of which model.

``/v2``, ``/v2/health/live``, ``/v2/health/ready``, and
``/v2/models/{name}[/versions/{version}]`` followed by nothing (model metadata), ``/ready``
or ``/infer``. The path is the WSGI ``PATH_INFO`` (already percent-decoded), so a model name
with a space or a slash in it is found too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

PREFIX = "/v2"
SERVER = "/v2"
LIVE = "/v2/health/live"
READY = "/v2/health/ready"
MODELS = "/v2/models/"
# The operations, which are also the bounded `endpoint` label of the metrics.
MODEL_METADATA = "/v2/models"
MODEL_READY = "/v2/models/ready"
INFER = "/v2/models/infer"
LABELS = (SERVER, LIVE, READY, MODEL_METADATA, MODEL_READY, INFER)
_FIXED = {SERVER: SERVER, SERVER + "/": SERVER, LIVE: LIVE, READY: READY}
_VERSIONS = "/versions/"


@dataclass(frozen=True)
class Route:
    """An operation and, for the per-model ones, the name and version (None: not given)."""

    operation: str
    name: str | None = None
    version: str | None = None


def is_v2(path: str) -> bool:
    """True for ``/v2`` and every path under ``/v2/``."""
    return path.startswith(PREFIX) and (len(path) == 3 or path[3] == "/")


def route(path: str) -> Route | None:
    """The operation ``path`` asks for (None: no such endpoint)."""
    fixed = _FIXED.get(path)
    if fixed is not None:
        return Route(fixed)
    if not path.startswith(MODELS):
        return None
    rest = path[len(MODELS) :]
    operation = MODEL_METADATA
    for suffix, named in (("/infer", INFER), ("/ready", MODEL_READY)):
        if rest.endswith(suffix):
            rest, operation = rest[: -len(suffix)], named
            break
    name, found, version = rest.rpartition(_VERSIONS)
    if not found:
        name, version = rest, ""
    if not name or (found and not version):
        return None
    return Route(operation, name, version if found else None)


@lru_cache(maxsize=256)
def endpoint_label(path: str) -> str:
    """The metrics label of a ``/v2`` path: its operation, or ``other`` (cached: hot path)."""
    found = route(path)
    return "other" if found is None else found.operation
