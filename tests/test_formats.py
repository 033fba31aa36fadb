"""Format and pattern checks: right answers, and linear time on hostile strings."""

from __future__ import annotations

import time

import pytest

from catwalk.formats import FORMAT_MAX_LENGTH, FORMATS, compile_pattern

GOOD_BAD = {
    "date": (["2024-02-29", "1999-12-31"], ["2023-02-29", "2024-1-01", "٢٠٢٤-01-01", ""]),
    "date-time": (
        ["2024-01-31T12:00:00Z", "2024-01-31t12:00:00.123456+01:00", "2016-12-31T23:59:60Z"],
        ["yesterday", "2024-01-31 12:00:00Z", "2024-01-31T24:00:00Z", "2024-01-31T12:00:00"],
    ),
    "email": (
        ["someone@example.com", "a.b+c@d.example"],
        ["someone", "a@b", "@b.c", ".a@b.c", "a.@b.c", "a..b@c.d", "a@@b.c", "a b@c.d"],
    ),
    "hostname": (["example.com", "a-b.c", "localhost"], ["-a.com", "a_b.com", "", "a..b"]),
    "ipv4": (["127.0.0.1", "255.255.255.255"], ["256.0.0.1", "01.2.3.4", "1.2.3", "\u0661.2.3.4"]),
    "ipv6": (["::1", "2001:db8::8a2e:370:7334"], ["::g", "1::2::3", "fe80::1%eth0"]),
    "uri": (["https://example.com/x?y=1", "urn:isbn:123"], ["example.com", "http:// x", "1a:b"]),
    "uuid": (
        ["12345678-1234-5678-1234-567812345678"],
        [
            "not-a-uuid",
            "12345678123456781234567812345678",
            "{12345678-1234-5678-1234-567812345678}",
        ],
    ),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_formats_accept_and_reject(fmt: str) -> None:
    good, bad = GOOD_BAD[fmt]
    check = FORMATS[fmt]
    assert [v for v in good if not check(v)] == []
    assert [v for v in bad if check(v)] == []


LONG_BUT_WELL_FORMED = {
    "email": lambda n: "a@" + "b" * n + ".com",
    "hostname": lambda n: "a." * (n // 2) + "com",
    "uri": lambda n: "https://example.com/" + "a" * n,
    "date-time": lambda n: "2024-01-31T12:00:00." + "1" * n + "Z",
}


@pytest.mark.parametrize("fmt", sorted(LONG_BUT_WELL_FORMED))
def test_formats_have_a_maximum_length(fmt: str) -> None:
    make, limit = LONG_BUT_WELL_FORMED[fmt], FORMAT_MAX_LENGTH[fmt]
    assert FORMATS[fmt](make(limit // 2))
    assert not FORMATS[fmt](make(limit + 1))


HOSTILE = [
    "." * 200_000,
    "a@" * 100_000,
    "a" * 200_000 + "@",
    "1" * 200_000,
    ":" * 200_000,
    "-" * 200_000,
    "a." * 100_000,
    "a" * 199_999 + "!",
]


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_formats_are_linear_on_hostile_strings(fmt: str) -> None:
    # fastjsonschema's own email regex took 36 s on the first of these.
    started = time.perf_counter()
    for value in HOSTILE:
        FORMATS[fmt](value)
    assert time.perf_counter() - started < 0.5


def test_patterns_run_in_linear_time() -> None:
    search = compile_pattern("^(a+)+$")
    started = time.perf_counter()
    assert not search("a" * 100_000 + "!")  # Python's re: 2^100000 steps
    assert search("a" * 100_000)
    assert time.perf_counter() - started < 0.5


def test_dollar_means_the_end_of_the_string() -> None:
    search = compile_pattern("^[a-z]+$")
    assert search("abc")
    assert not search("abc\n")  # Python's re would match before the newline


@pytest.mark.parametrize("pattern", ["(?=a)b", "(?<!a)b", r"(a)\1", "("])
def test_patterns_re2_cannot_run_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="RE2"):
        compile_pattern(pattern)
