"""Bytes of any shape on the gunicorn socket itself (past nginx): the worker never crashes.

hypothesis sends request-like and random bytes straight to the unix socket of a running
server (bounded: a fixed number of examples, each a few KiB at most), the way a local client
of the socket could; every connection ends with a well-formed HTTP answer or a plain close,
never a hang, and the same worker goes on answering.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from served import RNG, Server, cmdline, write_config

Serve = Callable[..., Server]

METHODS = st.sampled_from([b"GET", b"POST", b"HEAD", b"FOO", b"PUT", b"", b"G\x00T"])
PATHS = st.sampled_from([b"/status", b"/predict", b"/info", b"/", b"/%00", b"*", b""])
VERSIONS = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/9", b""])
HEADER = st.tuples(
    st.sampled_from([b"Host", b"Content-Length", b"Transfer-Encoding", b"Connection",
                     b"X-Correlation-Id", b"Upgrade", b"Expect", b"X\x01"]),
    st.one_of(st.sampled_from([b"1", b"-1", b"chunked", b"close", b"keep-alive", b"999999999",
                               b"websocket", b"100-continue", b"a\x00b"]),
              st.binary(max_size=40)),
).map(lambda kv: kv[0] + b": " + kv[1] + b"\r\n")  # fmt: skip
REQUESTS = st.one_of(
    st.builds(
        lambda method, path, version, headers, body: (
            method + b" " + path + b" " + version + b"\r\n" + b"".join(headers) + b"\r\n" + body
        ),
        METHODS, PATHS, VERSIONS, st.lists(HEADER, max_size=6), st.binary(max_size=300),
    ),
    st.binary(max_size=2000),
)  # fmt: skip


def _exchange(path: Path, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(path))
        try:
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)  # no more: the worker sees the end
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused already
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        return answer


@pytest.fixture
def socket_path(serve: Serve, tmp_path: Path) -> tuple[Server, Path, int]:
    server = serve(RNG, config=write_config(tmp_path, "server:\n  workers: 1\n"))
    pids = server.wait_pids("catwalk.server.worker.wsgi", 2)
    master, worker = min(pids), max(pids)
    return server, Path(cmdline(master).split()[-1]) / "gunicorn.sock", worker


def test_any_bytes_on_the_socket_get_an_answer_or_a_close(
    socket_path: tuple[Server, Path, int],
) -> None:
    server, path, worker = socket_path

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(REQUESTS)
    def check(data: bytes) -> None:
        answer = _exchange(path, data)
        if answer:
            assert answer.startswith(b"HTTP/1.1 "), answer[:200]
            status = int(answer[9:12])
            assert 100 <= status < 600, answer[:200]
            if status >= 400 and not data.startswith(b"HEAD"):
                assert b"\r\nContent-Type: application/json\r\n" in answer, answer[:300]
        assert Path(f"/proc/{worker}").exists()  # the same worker: it never died

    check()
    assert server.get("/status").status_code == 200
    assert Path(f"/proc/{worker}").exists() and "wsgi" in cmdline(worker)
