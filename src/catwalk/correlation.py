"""Correlation ids: the rule a client's id must follow, and new ones.

A client may name its request (``correlation_id`` in ``POST /predict``'s envelope, ``id`` in an
Open Inference Protocol request, the ``X-Correlation-Id`` header); the id comes back in the
answer and names the request's log lines, so it must stay on one line. A request that names
none gets a new one. Both the server and :mod:`catwalk.protocol` follow this one rule.
"""

from __future__ import annotations

import os
import random
import re
from typing import Any

from catwalk.json_codec import kind

MAX_CORRELATION_ID = 256
# C0 controls, DEL and C1 controls: a correlation id is logged and must stay on its line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

# Correlation ids are for tracing, not secrets: a private Mersenne Twister seeded from the OS
# is unique enough and ten times cheaper than uuid.uuid4(), which reads os.urandom every call.
# Private, so a model seeding the global `random` (the RNG example does) cannot repeat our ids;
# reseeded after fork, so gunicorn workers forked from one master do not share a sequence.
# (The process's one source of ids, like `random`'s own: no app or request keeps state here.)
_ids = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.seed)
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_correlation_id() -> str:
    """A random version-4 UUID string (``6f1c2a9e-…``)."""
    h = "%032x" % ((_ids.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def correlation_id_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a client's correlation id (None when it can)."""
    if type(value) is not str or not value:
        return f"correlation_id: must be a non-empty string, got {kind(value)}"
    if len(value) > MAX_CORRELATION_ID:
        return f"correlation_id: must be at most {MAX_CORRELATION_ID} characters, got {len(value)}"
    if not value.isprintable():
        found = _CONTROL.search(value)
        if found is not None:
            return (
                f"correlation_id: must not contain control characters, found "
                f"{found.group().encode('unicode_escape').decode('ascii')} at position "
                f"{found.start()}"
            )
    return None
