"""Whether a server answers HTTP: wait for ``/status``, or say in a few words why nothing answers.

Shared by test-server (its own server or ``--url``), test-image (the container) and the tests.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import requests
from urllib3.exceptions import InsecureRequestWarning

from catwalk.errors import CatwalkError


def wait_ready(
    base_url: str,
    *,
    timeout: float,
    verify: bool | str = True,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll ``GET /status`` until it answers 200; raise CatwalkError on timeout or death."""
    with quiet_if_unverified(verify):
        _wait_ready(base_url, timeout, verify, alive)


def _wait_ready(
    base_url: str, timeout: float, verify: bool | str, alive: Callable[[], bool] | None
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    url = base_url.rstrip("/") + "/status"
    while True:
        if alive is not None and not alive():
            raise CatwalkError(f"the server process exited before {url} answered")
        try:
            response = requests.get(url, timeout=2.0, verify=verify)
            if response.status_code == 200:
                return
            last = f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            last = short(exc)
        if time.monotonic() >= deadline:
            raise CatwalkError(f"{url} did not answer 200 within {timeout:g}s (last: {last})")
        time.sleep(0.1)


@contextmanager
def quiet_if_unverified(verify: bool | str) -> Iterator[None]:
    """Without verification (self-signed pairs), urllib3 would warn on every single request."""
    with warnings.catch_warnings():
        if verify is False:
            warnings.simplefilter("ignore", InsecureRequestWarning)
        yield


def unreachable(base_url: str, *, verify: bool | str = True, timeout: float = 10.0) -> str | None:
    """Why nothing answers HTTP at ``base_url`` (short), or None when something does."""
    try:
        with quiet_if_unverified(verify):
            requests.get(base_url.rstrip("/") + "/status", timeout=timeout, verify=verify)
    except requests.RequestException as exc:
        return connection_problem(exc)
    return None


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def connection_problem(exc: BaseException) -> str:
    """A requests error in a few words: "connection refused", "timed out", an SSL problem."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        found = re.search(r"SSLError\((?:\d+, )?['\"]?([^'\"]+)", text)
        return f"TLS error: {found.group(1) if found else 'handshake failed'}"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    found = _ERRNO.search(text)
    if found:
        return found.group(1).strip().rstrip(".").lower()
    if "Name or service not known" in text or "NameResolutionError" in text:
        return "host name not found"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the connection was closed without an answer"
    return short(text.splitlines()[0] if text else type(exc).__name__)


def request_failure(exc: requests.RequestException, timeout: float) -> str:
    """A check's failed request in catwalk's words, never the HTTP library's exception text
    (test-server, test-image: ``--timeout``)."""
    if isinstance(exc, requests.Timeout):
        return (
            f"no answer within {timeout:g} s (--timeout / CATWALK_TEST_TIMEOUT): the model is "
            "slower than that, or stuck (see the server log)"
        )
    return f"request failed: {connection_problem(exc)}"


def short(exc: BaseException | str) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:297] + "..."
