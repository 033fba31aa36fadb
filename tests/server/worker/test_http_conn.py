"""catwalk's worker-side HTTP/1.1 (catwalk.server.worker.http_conn): parsing, environ, answers.

The connection is driven byte by byte as nginx would drive it, with a transport that records
what is written; the worker is a stand-in that answers each request with its environ's
method and path (the real worker, behind real nginx, is in tests/server/production).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from catwalk.server.worker.http_conn import MAX_HEADER_BYTES, Connection
from catwalk.server.worker.http_message import Request, json_answer, response_bytes

BASE = {"SCRIPT_NAME": "", "wsgi.url_scheme": "http"}


class Transport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False
        self.reading = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.written += data

    def close(self) -> None:
        self.closed = True


class Clock:
    """The worker's loop, as far as a connection uses it: its time, and call_soon."""

    now = 100.0

    def __init__(self) -> None:
        self.soon: list[Any] = []

    def time(self) -> float:
        return self.now

    def call_soon(self, callback: Any) -> None:
        self.soon.append(callback)


class Worker:
    """Answers each request with ``METHOD PATH body-length`` (and keeps its environ)."""

    def __init__(self, max_body_bytes: int = 1000) -> None:
        self.loop = Clock()
        self.half_read = 0
        self.half_read_bytes = 0
        self.released_count = 0
        self.connections: set[Connection] = set()
        self.max_body_bytes = max_body_bytes
        self.environs: list[dict[str, Any]] = []

    def released(self, conn: Connection) -> None:
        self.released_count += 1

    def answer(self, conn: Connection, request: Request) -> None:
        environ = request.environ(BASE)
        self.environs.append(environ)
        text = f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']} {len(request.body)}"
        conn.write(response_bytes("200 OK", [], [text.encode()], False, False), False)
        conn.answered()


def connect(worker: Worker) -> tuple[Connection, Transport]:
    conn, transport = Connection(worker), Transport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


def environ_of(raw: bytes) -> dict[str, Any]:
    """The environ the worker is given for the one request in ``raw``."""
    worker = Worker()
    conn, _ = connect(worker)
    conn.data_received(raw)
    (environ,) = worker.environs
    return environ


def answers(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split what was written into (status, headers, body) answers."""
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int(headers["Content-Length"])
        out.append((int(lines[0].split()[1]), headers, rest[:length]))
        raw = rest[length:]
    return out


def test_requests_on_one_kept_alive_connection_are_answered_in_order() -> None:
    worker = Worker()
    conn, transport = connect(worker)
    first = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    second = b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n"
    for i in range(0, len(first), 7):  # in pieces, as TCP may deliver them
        conn.data_received(first[i : i + 7])
    conn.data_received(second + second)  # two at once (pipelined)
    got = answers(transport.written)
    assert [body for _, _, body in got] == [b"POST /predict 5", b"GET /status 0", b"GET /status 0"]
    assert not transport.closed and not conn.reading


def test_the_environ_is_what_gunicorn_would_build() -> None:
    environ = environ_of(
        b"POST /a%20b/c?q=1&r=%20 HTTP/1.1\r\nHost: example.org:8443\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\nX-Forwarded-Proto: https\r\n"
        b"X-Tag: one\r\nX-Tag: two\r\nX_Forged: yes\r\n\r\n{}"
    )
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["PATH_INFO"] == "/a b/c" and environ["QUERY_STRING"] == "q=1&r=%20"
    assert environ["RAW_URI"] == "/a%20b/c?q=1&r=%20"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("example.org", "8443")
    assert environ["CONTENT_TYPE"] == "application/json" and environ["CONTENT_LENGTH"] == "2"
    assert "HTTP_CONTENT_LENGTH" not in environ
    assert environ["HTTP_X_TAG"] == "one,two"
    assert not any("FORGED" in key for key in environ)  # X_Forged could pose as X-Forged
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["wsgi.input"].read() == b"{}"


@pytest.mark.parametrize(
    ("host", "name", "port"),
    [("[::1]:9090", "[::1]", "9090"), ("[::1]", "[::1]", None), ("localhost", "localhost", None)],
)
def test_server_name_and_port_come_from_the_host_header(
    host: str, name: str, port: str | None
) -> None:
    environ = environ_of(f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    assert environ["SERVER_NAME"] == name
    assert environ.get("SERVER_PORT") == port


def refused(raw: bytes, max_body_bytes: int = 1000) -> tuple[int, dict[str, Any], Transport]:
    worker = Worker(max_body_bytes)
    conn, transport = connect(worker)
    conn.data_received(raw)
    assert worker.environs == []  # never reached the app
    assert transport.closed
    ((status, headers, body),) = answers(transport.written)
    assert headers["Content-Type"] == "application/json" and headers["Connection"] == "close"
    return status, json.loads(body), transport


def test_a_malformed_request_gets_a_json_400_and_the_connection_is_closed() -> None:
    status, body, _ = refused(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
    assert status == 400 and body["output"]["message"].startswith("bad request")
    assert body["correlation_id"]  # a fresh one


def test_an_upgrade_is_refused() -> None:
    status, body, _ = refused(
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    assert status == 400 and "upgrade" in body["output"]["message"]


def test_a_body_above_the_limit_is_refused_before_it_is_all_read() -> None:
    status, body, _ = refused(b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + b"x" * 1001)
    assert status == 413 and body["output"]["message"] == "payload too large"


def test_headers_without_end_are_bounded() -> None:
    raw = b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"a" * (MAX_HEADER_BYTES + 10)
    status, body, _ = refused(raw)
    assert status == 431 and "header" in body["output"]["message"]
    many = b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 1001 + b"\r\n"
    assert refused(many)[0] == 431


def test_an_idle_connection_closes_but_not_one_in_the_middle_of_a_request() -> None:
    worker = Worker()
    conn, transport = connect(worker)
    conn.data_received(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
    assert conn.close_if_idle() is False and not transport.closed
    conn.data_received(b"defghij")
    assert answers(transport.written)[0][2] == b"POST / 10"
    conn.answering = 1  # as while the worker answers (a batch)
    assert conn.close_if_idle() is False
    conn.answering = 0
    assert conn.close_if_idle(since=99.0) is False  # it answered at 100: a request may follow
    worker.loop.now = 101.0
    assert conn.close_if_idle(since=100.5) is True and transport.closed
    conn.connection_lost(None)
    assert conn not in worker.connections


def test_answers_carry_a_content_length_and_close_when_asked() -> None:
    raw = response_bytes("201 Created", [("X-A", "1")], [b"ab", b"cd"], False, True)
    nosniff = b"X-Content-Type-Options: nosniff\r\n"
    assert raw == (
        b"HTTP/1.1 201 Created\r\nX-A: 1\r\n" + nosniff + b"Content-Length: 4\r\n"
        b"Connection: close\r\n\r\nabcd"
    )
    given = response_bytes("200 OK", [("content-length", "9")], iter([b""]), True, False)
    assert given == b"HTTP/1.1 200 OK\r\n" + nosniff + b"Content-Length: 9\r\n\r\n"  # HEAD
    wrong = response_bytes("200 OK", [("Content-Length", "99")], [b"abcd"], False, False)
    assert wrong == b"HTTP/1.1 200 OK\r\n" + nosniff + b"Content-Length: 4\r\n\r\nabcd"
    hop = [("Connection", "keep-alive"), ("Transfer-Encoding", "chunked"), ("ETag", '"x"')]
    hop.append(("X-Content-Type-Options", "sniff-away"))  # never the app's: always nosniff
    unchanged = response_bytes("304 NOT MODIFIED", hop, [b""], False, False)
    assert unchanged == b'HTTP/1.1 304 NOT MODIFIED\r\nETag: "x"\r\n' + nosniff + b"\r\n"
    with pytest.raises(ValueError, match="line break"):
        response_bytes("200 OK", [("X-A", "1\r\nX-Injected: 2")], [b""], False, False)
    refused_answer = json_answer(503, b"{}")
    assert refused_answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"\r\nX-Content-Type-Options: nosniff\r\n" in refused_answer


def test_a_chunked_body_is_read_whole_and_its_trailers_are_not_headers() -> None:
    environ = environ_of(
        b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\nHost: evil\r\nX-Trailer: 1\r\n\r\n"
    )
    assert environ["CONTENT_LENGTH"] == "5" and environ["wsgi.input"].read() == b"abcde"
    assert environ["HTTP_HOST"] == "a" and "HTTP_X_TRAILER" not in environ


def test_endless_chunk_framing_or_trailers_are_bounded() -> None:
    worker = Worker(max_body_bytes=1000)
    conn, transport = connect(worker)
    conn.data_received(b"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: ")
    for _ in range(20):
        if transport.closed:
            break
        conn.data_received(b"a" * 65536)
    assert transport.closed and worker.environs == []
    assert answers(transport.written)[0][0] == 413


def test_a_pending_answer_holds_the_next_request_on_its_connection() -> None:
    class Slow(Worker):
        """Leaves the first request pending, as a batching worker does (greenlet waiting)."""

        def answer(self, conn: Connection, request: Request) -> None:
            if not self.environs:
                self.environs.append(request.environ(BASE))
                conn.answering += 1
                self.pending = conn
                return
            super().answer(conn, request)

    worker = Slow()
    conn, transport = connect(worker)
    conn.data_received(
        b"POST /predict HTTP/1.1\r\nContent-Length: 0\r\n\r\nGET /status HTTP/1.1\r\n\r\n"
    )
    assert transport.written == b"" and not transport.reading  # /status waits its turn
    conn.answering -= 1
    conn.write(response_bytes("200 OK", [], [b"first"], False, False), False)
    conn.answered()
    for callback in worker.loop.soon:  # the loop's next turn
        callback()
    assert [body for _, _, body in answers(transport.written)] == [b"first", b"GET /status 0"]
    assert transport.reading


def test_a_refused_request_keeps_the_clients_correlation_id_and_nginxs_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # As nginx sends them: its own headers first, then the client's (a bad one, or a method
    # llhttp does not know, stops the parser before the ids are read).
    ids = b"X-Request-Id: 0d4e5f\r\nX-Correlation-Id: order-17\r\n"
    for raw in (
        b"FOO /predict HTTP/1.0\r\nHost: x\r\n" + ids + b"\r\n",
        b"GET /status HTTP/1.0\r\nHost: x\r\n" + ids + b"X-Bad: a\x01b\r\n\r\n",
    ):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="catwalk.server"):
            status, body, _ = refused(raw)
        assert status == 400 and body["correlation_id"] == "order-17", raw
        [message] = caplog.messages
        assert "correlation_id=order-17" in message and "request_id=0d4e5f" in message
    status, body, _ = refused(b'FOO / HTTP/1.0\r\nX-Correlation-Id: a"b\r\n\r\n')
    assert status == 400 and body["correlation_id"] != 'a"b'  # not a well-formed id: a new one


def test_a_connection_lets_go_of_its_buffers_when_it_closes() -> None:
    worker = Worker(max_body_bytes=1 << 20)
    conn, transport = connect(worker)
    conn.data_received(b"POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"x" * 50000)
    assert conn.body and worker.half_read == 1 and worker.half_read_bytes > 50000
    conn.connection_lost(None)  # nginx went away in the middle of the body
    assert conn.parser is None and conn.body == [] and not conn.complete
    assert worker.half_read == 0 and worker.half_read_bytes == 0 and worker.released_count == 1
    conn.data_received(b"more")  # what a closed transport still hands over is dropped
    assert worker.half_read_bytes == 0
    # a body is the request's alone once it is complete: the connection keeps no chunk of it
    conn, transport = connect(worker)
    conn.data_received(b"POST / HTTP/1.1\r\nContent-Length: 6\r\n\r\nab")
    conn.data_received(b"cdef")
    assert answers(transport.written)[0][2] == b"POST / 6" and conn.body == []
    assert worker.half_read_bytes == 0


def test_a_request_must_arrive_whole_within_its_deadline() -> None:
    worker = Worker(max_body_bytes=1 << 20)
    slow, slow_transport = connect(worker)
    slow.data_received(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")  # begun at 100
    idle, idle_transport = connect(worker)
    slow.expire(109.0, 10.0, 30.0)
    idle.expire(109.0, 10.0, 30.0)
    assert not slow_transport.closed and not idle_transport.closed
    slow.expire(110.5, 10.0, 30.0)
    (status, _, body), *_ = answers(slow_transport.written)
    assert status == 408 and b"within 10 s" in body and slow_transport.closed
    assert worker.half_read == 0 and worker.half_read_bytes == 0
    idle.expire(129.0, 10.0, 30.0)
    assert not idle_transport.closed
    idle.expire(130.5, 10.0, 30.0)
    assert idle_transport.closed and idle_transport.written == b""  # idle: closed quietly
    assert worker.released_count == 2
