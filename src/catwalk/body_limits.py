"""Request-body limits checked on the raw bytes, before any parser or recursive code sees them.

Nesting depth: a body nested deeper than ``server.limits.max_depth`` (default 64) is refused
with a 400 naming the limit. Recursive code (the standard library's json, jsonschema-style
walks, orjson's writer, which stops at 255 levels) never sees a deep value, so it cannot
raise RecursionError. The check is linear and runs in C (``bytes.count``, ``translate``,
``replace``, ``split``): a body with fewer opening brackets than the limit, the common case,
costs two ``count`` calls.
"""

from __future__ import annotations

import re

# Keep quotes and brackets, written as braces: one kind of pair is enough to count levels.
_BRACES = bytes.maketrans(b"[]", b"{}")
_DROP = bytes(i for i in range(256) if i not in b'"[]{}')
_PASSES = 4
_SMALL = 4096  # below this, counting brackets in the body is cheaper than translating it
_RUNS = re.compile(rb"\{+|\}+")
_OPEN = ord("{")


def too_deep(body: bytes, limit: int) -> bool:
    """True when the JSON text ``body`` nests arrays/objects more than ``limit`` levels deep.

    Exact for valid JSON (brackets inside strings do not count); for invalid JSON the answer
    may be either, and the parser then rejects the body anyway.
    """
    if len(body) <= _SMALL and body.count(b"[") + body.count(b"{") <= limit:
        return False
    if b"\\" in body:
        # In valid JSON a backslash only starts an escape of two characters: dropping the
        # escaped backslashes, then the escaped quotes, leaves only the quotes that delimit
        # strings (scanning left to right pairs backslashes exactly as escapes do).
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Only quotes and brackets are kept, brackets as braces: a larger body is first made
    # much smaller, then its brackets counted.
    marks = body.translate(_BRACES, _DROP)
    if marks.count(b"{") <= limit:
        return False
    # A string without brackets inside is now `""`: when no quote survives dropping those,
    # every string was one (a string with a bracket keeps its opening quote, which has no
    # quote beside it). Otherwise even parts of a split on quotes are outside strings.
    braces = marks.replace(b'""', b"")
    if b'"' in braces:
        braces = b"".join(marks.split(b'"')[::2])
    if b"{" * (limit + 1) in braces:
        return True
    # Each pass removes the innermost pairs (one replace: the pairs it forms wait for the
    # next pass), so the depth is the number of passes plus the depth of what remains. A
    # few passes settle most bodies; what remains is measured run by run.
    passes = 0
    while braces and passes < _PASSES:
        braces = braces.replace(b"{}", b"")
        passes += 1
    if not braces:
        return passes > limit  # emptied by the last pass: the depth is the number of passes
    level = 0
    room = limit - passes
    for run in _RUNS.findall(braces):
        if run[0] == _OPEN:
            level += len(run)
            if level > room:
                return True
        else:
            level -= len(run)
    return False
