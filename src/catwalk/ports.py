"""Local TCP ports: is one free to listen on, and which one to give a throwaway server.

Kept apart from the server and the checks because both sides use it: ``test-server`` and the
test suite pick ports for the servers they start, ``test-image`` checks the port it publishes.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Linux hands out outgoing connections' local ports from this range (net.ipv4.ip_local_port_range).
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10000  # below this, ports are more often taken by well-known services
_TRIES = 100
_handed_out: set[int] = set()  # ports this process gave out: never twice, even once free again
_random = random.SystemRandom()


def port_is_free(port: int, *, ipv6: bool = True) -> bool:
    """True when nothing listens on ``port`` on any local IPv4 (and IPv6) address.

    ``SO_REUSEADDR``, as nginx, ``catwalk serve`` and docker-proxy set it: a port whose last
    connections are in TIME_WAIT (for a minute after a previous run) is free for them, so it is
    free here too; a listening socket still makes the bind fail.
    """
    probes: list[tuple[socket.AddressFamily, tuple[str, int]]] = [
        (socket.AF_INET, ("0.0.0.0", port)),
        (socket.AF_INET, ("127.0.0.1", port)),
    ]
    if ipv6 and socket.has_ipv6:
        probes.append((socket.AF_INET6, ("::", port)))
    for family, address in probes:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
        except OSError:
            if family == socket.AF_INET6 and address[0] == "::" and not _ipv6_usable():
                continue
            return False
    return True


def free_port() -> int:
    """A TCP port nothing listens on now, and that no outgoing connection will take.

    A port the kernel picks (bind to port 0) comes from the ephemeral range, where any
    outgoing connection on the machine may take it before the server binds it ("address
    already in use" under load). A random port below that range, checked on IPv4 and IPv6
    as the servers listen, avoids that race.
    """
    low = _ephemeral_low()
    if low - 1 > _LOWEST:
        for _ in range(_TRIES):
            port = _random.randrange(_LOWEST, low)
            if port not in _handed_out and port_is_free(port):
                _handed_out.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # no room below the range
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    _handed_out.add(port)
    return port


def _ephemeral_low() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _ipv6_usable() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True
