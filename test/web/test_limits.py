"""Connection and message limits of the web server, driven with raw sockets.

(The fault tier, ``test/fault/test_http_abuse_2.py``, makes the same abuse
at full scale against a service process.)
"""

import base64
import json
import os
import struct
import time

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.testing.web_fixtures import raw_http
from nameko_like.web.frames import unmask
from nameko_like.web.handlers import http
from nameko_like.web.websocket import rpc

from eventlet.green import socket


class Target:
    name = "target"

    @http("GET,POST", "/echo")
    def echo(self, request):
        return request.get_data()

    @rpc
    def size(self, socket_id, text):
        return len(text)


@pytest.fixture
def start(container_factory, web_config, web_config_port):
    def start(**config):
        container_factory(Target, dict(web_config, **config)).start()
        return web_config_port

    return start


def connect(port, source="127.0.0.1"):
    sock = socket.socket()
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def read_all(sock):
    answer = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return answer
            answer += chunk
    except OSError:
        return answer


def get(port, source="127.0.0.1"):
    sock = connect(port, source)
    try:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        return read_all(sock)
    finally:
        sock.close()


def handshake(port, source="127.0.0.1"):
    sock = connect(port, source)
    key = base64.b64encode(os.urandom(16))
    sock.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            break
        head += chunk
    return sock, int(head[9:12])


def frame(payload, opcode=1, fin=True, mask=b"\x01\x02\x03\x04"):
    first = (0x80 if fin else 0) | opcode
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return struct.pack("!BBQ", first, 0x80 | 127, len(payload)) + mask + masked


# --- unmasking -----------------------------------------------------------------


@pytest.mark.parametrize("offset", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("length", [0, 1, 3, 4, 7, 1000])
def test_unmask_is_xor_with_the_rotating_mask(offset, length):
    data = os.urandom(length)
    mask = (0x9A, 0x00, 0xFF, 0x37)
    expected = bytes(byte ^ mask[(offset + index) % 4] for index, byte in enumerate(data))
    assert unmask(data, mask, offset) == expected


def test_unmask_is_not_a_byte_loop():
    data = os.urandom(10 * 1024 * 1024)
    started = time.perf_counter()
    unmask(data, (1, 2, 3, 4))
    # A Python loop over the bytes takes seconds.
    assert time.perf_counter() - started < 0.5


# --- HTTP connections ---------------------------------------------------------


def test_two_host_headers_are_400(start):
    port = start()
    response = raw_http(port, b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400 ")
    assert b"more than one Host header" in response


def test_chunked_body_is_limited_in_chunks(start):
    port = start(WEB_MAX_REQUEST_CHUNKS=10)
    head = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    response = raw_http(port, head + b"1\r\nx\r\n" * 10 + b"0\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b"\r\n\r\n" + b"x" * 10)
    response = raw_http(port, head + b"1\r\nx\r\n" * 11 + b"0\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 413 ")
    assert b"more than 10 chunks" in response


def test_silent_connection_is_closed_after_the_idle_timeout(start):
    port = start(WEB_IDLE_TIMEOUT=0.3, WEB_SOCKET_TIMEOUT=5)
    sock = connect(port)
    started = time.monotonic()
    assert read_all(sock) == b""
    assert 0.2 < time.monotonic() - started < 2


def test_keep_alive_connection_is_closed_after_the_idle_timeout(start):
    port = start(WEB_IDLE_TIMEOUT=0.3, WEB_SOCKET_TIMEOUT=5)
    sock = connect(port)
    sock.sendall(b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
    started = time.monotonic()
    assert read_all(sock).startswith(b"HTTP/1.1 200 ")
    assert time.monotonic() - started < 2


def test_connections_per_client_are_capped(start):
    port = start(WEB_MAX_CONNECTIONS_PER_CLIENT=3)
    idle = [connect(port) for _ in range(3)]
    try:
        eventlet.sleep(0.1)
        # A fourth from the same address is closed unanswered...
        assert get(port) == b""
        # ...another address is served.
        assert get(port, "127.0.0.2").startswith(b"HTTP/1.1 200 ")
        idle.pop().close()
        eventlet.sleep(0.1)
        assert get(port).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in idle:
            sock.close()


def test_idle_connections_make_room_when_all_are_taken(start):
    port = start(WEB_MAX_CONNECTIONS=2, WEB_IDLE_TIMEOUT=60)
    idle = [connect(port, f"127.0.0.{number}") for number in (3, 4)]
    try:
        eventlet.sleep(0.1)
        started = time.monotonic()
        assert get(port).startswith(b"HTTP/1.1 200 ")
        assert time.monotonic() - started < 1
        # the oldest idle connection gave way
        assert read_all(idle[0]) == b""
    finally:
        for sock in idle:
            sock.close()


# --- websockets ----------------------------------------------------------------


def test_websockets_are_limited_apart_from_http(start):
    port = start(WEB_MAX_WEBSOCKETS=1, WEB_MAX_CONNECTIONS=1)
    first, status = handshake(port)
    try:
        assert status == 101
        # The websocket left its HTTP slot: a request is still served.
        assert get(port).startswith(b"HTTP/1.1 200 ")
        second, status = handshake(port)
        assert status == 503
        assert b"too many websockets" in read_all(second)
        second.close()
    finally:
        first.close()
    eventlet.sleep(0.2)
    third, status = handshake(port)
    third.close()
    assert status == 101


def test_fragmented_message_is_limited_in_total(start):
    port = start(WEB_MAX_WEBSOCKET_MESSAGE=1000)
    sock, status = handshake(port)
    try:
        assert status == 101
        text = json.dumps({"method": "size", "data": {"text": "y" * 800}}).encode()
        # Under the limit in three fragments: answered.
        sock.sendall(frame(text[:300], opcode=1, fin=False)
                     + frame(text[300:600], opcode=0, fin=False)
                     + frame(text[600:], opcode=0, fin=True))
        received = b""
        while b'"data": 800' not in received:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
        # 1,200 bytes in two fragments of 600: closed with 1009.
        sock.sendall(frame(b"z" * 600, opcode=1, fin=False)
                     + frame(b"z" * 600, opcode=0, fin=False))
        answer = read_all(sock)
        assert b"\x88" in answer  # a close frame...
        assert struct.pack("!H", 1009) + b"message larger than 1000 bytes" in answer
    finally:
        sock.close()
