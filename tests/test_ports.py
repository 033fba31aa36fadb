"""free_port: below the ephemeral range, free on IPv4 and IPv6, never handed out twice."""

from __future__ import annotations

import socket

from catwalk.ports import _ephemeral_low, free_port, port_is_free


def test_free_ports_are_below_the_ephemeral_range_and_distinct() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert all(1024 < port < _ephemeral_low() for port in ports)


def test_a_port_listened_on_any_address_is_not_free() -> None:
    port = free_port()
    assert port_is_free(port)
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        server.bind(("::", port))
        server.listen(1)
        assert not port_is_free(port)  # a server listening on IPv6 only counts too
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", port))
        server.listen(1)
        assert not port_is_free(port)
