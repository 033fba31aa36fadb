"""Where this machine reaches the ports of a container the Docker engine runs.

An engine on this machine (a unix socket, the default) publishes a container's ports on
127.0.0.1. An engine elsewhere — a CI job's ``docker:dind`` service, reached as
``DOCKER_HOST=tcp://docker:2375`` — publishes them on its own machine: the job must connect to
that host, and the engine must publish on its interfaces, not its loopback. This is the rule
testcontainers follows (the host of a ``tcp://`` DOCKER_HOST, else localhost), with
``CATWALK_CONTAINER_HOST`` as its override (testcontainers' TESTCONTAINERS_HOST_OVERRIDE) for
setups the URL does not tell, such as a job container given the host's socket.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

OVERRIDE = "CATWALK_CONTAINER_HOST"
_REMOTE_SCHEMES = ("tcp", "http", "https", "ssh")


@dataclass(frozen=True)
class EngineHost:
    #: The host name or address this machine connects to for a published port.
    connect: str
    #: The address the engine publishes ports on (its loopback only when the engine is here).
    bind: str

    @property
    def is_local(self) -> bool:
        return _is_loopback(self.connect)

    def url_host(self) -> str:
        """``connect`` as it goes into a URL (an IPv6 address in brackets)."""
        return f"[{self.connect}]" if ":" in self.connect else self.connect


def engine_host(environ: Mapping[str, str] | None = None) -> EngineHost:
    """The host of the engine DOCKER_HOST names, for its containers' published ports."""
    env = os.environ if environ is None else environ
    host = env.get(OVERRIDE, "").strip()
    if not host:
        url = urlsplit(env.get("DOCKER_HOST", "").strip())
        host = (url.hostname or "") if url.scheme in _REMOTE_SCHEMES else ""
    if not host or host == "localhost":
        host = "127.0.0.1"
    return EngineHost(connect=host, bind=host if _is_loopback(host) else "0.0.0.0")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"
