"""HTTP abuse against a running @http service (issue 8.5).

Huge bodies, slow-loris clients and malformed requests must each get a
clear 4xx (or be disconnected) without a traceback, without ballooning the
process's memory, and without keeping ``GET /ping`` from answering within a
second.
"""

import time

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.testing.web_fixtures import raw_http
from nameko_like.web.handlers import http

from eventlet.green import socket

pytestmark = pytest.mark.fault

MB = 1024 * 1024
PING = b"GET /ping HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"


class Target:
    name = "target"
    calls = 0

    @http("GET", "/ping")
    def ping(self, request):
        return "pong"

    @http("POST", "/echo")
    def echo(self, request):
        Target.calls += 1
        return request.get_data()


@pytest.fixture
def port(container_factory, web_config, web_config_port):
    Target.calls = 0
    # Default body limit (10 MiB); a short header timeout; few workers, so
    # a client holding one would show.
    config = dict(web_config, WEB_SOCKET_TIMEOUT=1.0, max_workers=2)
    container_factory(Target, config).start()
    return web_config_port


def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def ping_seconds(port):
    started = time.monotonic()
    response = raw_http(port, PING, half_close=False, timeout=5)
    assert response.startswith(b"HTTP/1.1 200"), response[:100]
    return time.monotonic() - started


def upload(port, head, total, block=b"x" * 65536):
    """Send ``head`` then up to ``total`` bytes of body while reading the answer.

    Sending goes on after the answer came, until all is sent or the server
    closes the connection; returns the answer and the bytes of body sent.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sent = [0]

    def sender():
        try:
            sock.sendall(head)
            while sent[0] < total:
                sock.sendall(block)
                sent[0] += len(block)
        except OSError:
            pass  # the server stopped reading: expected

    thread = eventlet.spawn(sender)
    received = b""
    try:
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        with eventlet.Timeout(20):
            thread.wait()
    finally:
        thread.kill()
        sock.close()
    return received, sent[0]


def test_50_mb_body_with_content_length_is_413_without_buffering(port):
    before = rss_mb()
    head = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (50 * MB)
    response, sent = upload(port, head, 50 * MB)
    assert response.startswith(b"HTTP/1.1 413 ")
    assert sent >= 50 * MB  # the server read (and dropped) it all, so we read its answer
    assert b"Traceback" not in response
    assert rss_mb() - before < 10
    assert Target.calls == 0
    assert ping_seconds(port) < 1


def test_50_mb_chunked_body_is_cut_at_the_limit(port):
    before = rss_mb()
    head = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    block = b"%x\r\n%s\r\n" % (65536, b"x" * 65536)
    response, _sent = upload(port, head, 50 * MB, block)
    assert response.startswith(b"HTTP/1.1 413 ")
    # At most the 10 MiB limit was ever held, never the 50 MB sent.
    assert rss_mb() - before < 25
    assert Target.calls == 0


def open_slow_loris(port, count):
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: a\r\n")
        sockets.append(sock)
    return sockets


def dribble(sockets, stop):
    """Keep every connection alive with one header line now and then."""
    number = 0
    while not stop.ready():
        number += 1
        for sock in sockets:
            try:
                sock.sendall(b"X-Slow-%d: 1\r\n" % number)
            except OSError:
                pass
        stop.wait(0.2)


def test_slow_loris_connections_are_closed_and_ping_keeps_answering(port):
    sockets = open_slow_loris(port, 50)
    stop = eventlet.event.Event()
    feeder = eventlet.spawn(dribble, sockets, stop)
    try:
        started = time.monotonic()
        pings = []
        while time.monotonic() - started < 1.5:
            pings.append(ping_seconds(port))
            eventlet.sleep(0.1)
        assert max(pings) < 1

        # Each connection was told 408 and closed once its head was not
        # complete within WEB_SOCKET_TIMEOUT (1 s), however busy it kept.
        for sock in sockets:
            answer = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 3
    finally:
        stop.send(True)
        feeder.wait()
        for sock in sockets:
            sock.close()


def test_slow_uploads_do_not_hold_workers(port):
    # Two workers, twenty clients trickling their bodies: the bodies are
    # received before any worker is taken, so /ping is not kept waiting.
    head = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"
    sockets = []
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(head + b"x")
        sockets.append(sock)
    try:
        assert max(ping_seconds(port) for _ in range(5)) < 1
        assert Target.calls == 0
    finally:
        for sock in sockets:
            sock.close()


MALFORMED = [
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"GET /ping HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 12abc\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nhello",
    b"GET /ping HTTP/9.9\r\nHost: a\r\n\r\n",
    b"GET /ping%zz HTTP/1.1\r\nHost: a\r\n\r\n",
]


@pytest.mark.parametrize("request_bytes", MALFORMED, ids=[
    "bad chunk size", "header without colon", "bad Content-Length",
    "short body then EOF", "HTTP/9.9", "bad %-escape",
])
def test_malformed_requests_get_a_4xx_without_traceback(port, request_bytes):
    response = raw_http(port, request_bytes)
    status = int(response[9:12])
    # 505 is only for an unsupported version, and comes with a status line.
    assert response.startswith((b"HTTP/1.1 4", b"HTTP/1.1 505 "))
    assert status in (400, 505)
    assert b"Traceback" not in response
    assert Target.calls == 0
    assert ping_seconds(port) < 1
