"""test-image's port check: a port in TIME_WAIT is free, a listening one is not (no Docker)."""

from __future__ import annotations

import socket

from catwalk.checks.server_checks import free_port
from catwalk.ports import port_is_free


def _time_wait(port: int) -> None:
    """Leave a connection on ``port`` in TIME_WAIT: the listening side closes first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(1)
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server's side goes to TIME_WAIT
        client.recv(1)
        client.close()


def test_a_port_in_time_wait_is_free() -> None:
    port = free_port()
    _time_wait(port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as plain:
        try:
            plain.bind(("127.0.0.1", port))
        except OSError:
            pass  # what the check without SO_REUSEADDR saw: "already taken"
        else:  # pragma: no cover - the kernel let it go already
            raise AssertionError("no TIME_WAIT to test against")
    assert port_is_free(port)


def test_a_listening_port_is_taken() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert not port_is_free(server.getsockname()[1])
