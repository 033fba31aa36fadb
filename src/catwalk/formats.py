"""String formats and ``pattern`` checks that run in linear time, whatever the client sends.

Both the fast validator (fastjsonschema, as custom formats) and the error explainer use these
functions, so they agree, and neither can be made to backtrack: fastjsonschema's own ``email``
regex takes 36 s on a 200 KB string of dots.

- Every checked format has a maximum length (:data:`FORMAT_MAX_LENGTH`, documented in
  docs/serving.md); a longer string is invalid without being looked at further.
- ``pattern`` is matched with RE2 (google-re2), whose matching time is linear in the string.
  A pattern RE2 cannot run in linear time (lookahead, lookbehind, backreferences) is a spec
  error when the model is loaded, not a slow request later. ``$`` means the end of the
  string, as in JSON Schema (ECMA-262), not "before a final newline" as in Python's ``re``.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import re
import uuid
from collections.abc import Callable

import re2

# RFC 5321 (254: a 256-octet path less its angle brackets), RFC 1035 (253), the longest
# textual IPv4/IPv6 forms, RFC 3339 with room for fractional seconds, a generous URI.
FORMAT_MAX_LENGTH = {
    "date": 10,
    "date-time": 64,
    "email": 254,
    "hostname": 253,
    "ipv4": 15,
    "ipv6": 45,
    "uri": 8192,
    "uuid": 36,
}
_EMAIL_LOCAL_MAX = 64  # RFC 5321

_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_DATE_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-]([0-9]{2}):([0-9]{2}))",
    re.ASCII,
)
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?", re.ASCII)
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")
_UUID_HYPHENS = (8, 13, 18, 23)


def _valid_date(year: str, month: str, day: str) -> bool:
    try:
        _dt.date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def is_date(value: str) -> bool:
    """RFC 3339 full-date (``2024-02-29``), a real calendar day."""
    match = _DATE.fullmatch(value) if len(value) == 10 else None
    return match is not None and _valid_date(*match.groups())


def is_date_time(value: str) -> bool:
    """RFC 3339 date-time (``2024-01-31T12:00:00Z``, ``...12:00:00.5+01:00``)."""
    if len(value) > FORMAT_MAX_LENGTH["date-time"]:
        return False
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second, off_hour, off_minute = match.groups()
    if not _valid_date(year, month, day):
        return False
    if int(hour) > 23 or int(minute) > 59 or int(second) > 60:  # 60: a leap second
        return False
    return off_hour is None or (int(off_hour) <= 23 and int(off_minute or 0) <= 59)


def is_email(value: str) -> bool:
    """``local@domain.tld``: one ``@``, a local part without leading/trailing/double dots."""
    if len(value) > FORMAT_MAX_LENGTH["email"] or value.count("@") != 1:
        return False
    local, _, domain = value.partition("@")
    if not local or len(local) > _EMAIL_LOCAL_MAX:
        return False
    if local[0] == "." or local[-1] == "." or ".." in local:
        return False
    return "." in domain[1:-1] and not any(c.isspace() for c in value)


def is_hostname(value: str) -> bool:
    """RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens."""
    if not value or len(value) > FORMAT_MAX_LENGTH["hostname"]:
        return False
    return all(_LABEL.fullmatch(label) for label in value.split("."))


def is_ipv4(value: str) -> bool:
    """Dotted-quad IPv4 address, no leading zeros."""
    if len(value) > FORMAT_MAX_LENGTH["ipv4"] or not value.isascii():
        return False
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def is_ipv6(value: str) -> bool:
    """IPv6 address in any RFC 4291 text form, without a zone (``%eth0``)."""
    if len(value) > FORMAT_MAX_LENGTH["ipv6"] or not value.isascii() or "%" in value:
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def is_uri(value: str) -> bool:
    """An absolute URI: an RFC 3986 scheme, ``:``, then no whitespace."""
    return len(value) <= FORMAT_MAX_LENGTH["uri"] and _URI.fullmatch(value) is not None


def is_uuid(value: str) -> bool:
    """RFC 4122 text form, ``12345678-1234-5678-1234-567812345678``."""
    if len(value) != 36 or any(value[i] != "-" for i in _UUID_HYPHENS):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


FORMATS: dict[str, Callable[[str], bool]] = {
    "date": is_date,
    "date-time": is_date_time,
    "email": is_email,
    "hostname": is_hostname,
    "ipv4": is_ipv4,
    "ipv6": is_ipv6,
    "uri": is_uri,
    "uuid": is_uuid,
}

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the error is reported as a spec problem instead


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A linear-time ``search`` for a JSON Schema ``pattern``; ValueError says why not."""
    try:
        compiled = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(
            f"{reason} (patterns are matched with RE2, in linear time: lookaround and "
            "backreferences are not supported)"
        ) from None

    def search(value: str) -> bool:
        return compiled.search(value) is not None

    return search
