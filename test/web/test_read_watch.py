"""How the HTTP engine waits for a connection's requests: one hub registration
and one deadline timer kept from wait to wait, deadlines still kept, and a
turn for the other connections."""

import base64
import json
import os
import struct

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.web.handlers import http
from nameko_like.web.limits import RequestLimits
from nameko_like.web.parser import RequestParser
from nameko_like.web.server import WebServer
from nameko_like.web.websocket import rpc

from eventlet.green import socket


class Echo:
    name = "echo"
    order = []

    @http("GET", "/echo/<name>")
    def echo(self, request, name):
        Echo.order.append(name)
        return name

    @rpc
    def shout(self, socket_id, text):
        return text.upper()


@pytest.fixture
def start(container_factory, web_config, web_config_port):
    def start(**config):
        Echo.order.clear()
        container_factory(Echo, dict(web_config, **config)).start()
        return web_config_port

    return start


def request(name):
    return b"GET /echo/%s HTTP/1.1\r\nHost: a\r\n\r\n" % name.encode()


def ask(sock, name):
    """Send one request on ``sock`` and read its whole answer."""
    sock.sendall(request(name))
    answer = b""
    while not answer.endswith(name.encode()):
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection"
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")
    return answer


def test_a_kept_alive_connection_is_registered_and_timed_once(start, monkeypatch):
    port = start()
    hub = eventlet.hubs.get_hub()
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.settimeout(None)  # (a client wait with no timer of its own)
        ask(client, "first")
        registered, timers = [], []
        add, schedule = hub.add, hub.schedule_call_global

        def counting_add(evtype, fileno, *args):
            if evtype == hub.READ and fileno != client.fileno():
                registered.append(fileno)
            return add(evtype, fileno, *args)

        def counting_schedule(seconds, *args, **kwargs):
            timers.append(seconds)
            return schedule(seconds, *args, **kwargs)

        monkeypatch.setattr(hub, "add", counting_add)
        monkeypatch.setattr(hub, "schedule_call_global", counting_schedule)
        for number in range(20):
            # The server waits for each of these (its client answers only
            # once it has the previous answer).
            ask(client, f"n{number}")
    # eventlet's own waits register and time every one of the 20 waits.
    assert len(registered) <= 2
    assert len(timers) <= 2


def test_idle_deadline_moves_on_with_each_request(start):
    port = start(WEB_IDLE_TIMEOUT=0.4)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        for number in range(8):  # 1.2 s in all, never 0.4 s idle
            ask(client, f"n{number}")
            eventlet.sleep(0.15)
        ask(client, "last")


def test_head_deadline_shorter_than_the_idle_one_is_kept(start):
    port = start(WEB_IDLE_TIMEOUT=30, WEB_SOCKET_TIMEOUT=0.3)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        ask(client, "first")  # the connection waits with a 30 s deadline now
        client.sendall(b"GET /echo/second HTTP/1.1\r\nHo")
        # 408 after 0.3 s; the client would give up after 5 s.
        assert client.recv(4096).startswith(b"HTTP/1.1 408 ")


def test_a_pipelining_client_lets_other_connections_in(start):
    port = start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as greedy, \
            socket.create_connection(("127.0.0.1", port), timeout=5) as other:
        greedy.sendall(b"".join(request(f"g{number}") for number in range(400)))
        other.sendall(request("other"))
        answer = b""
        while not answer.endswith(b"other"):
            answer += other.recv(4096)
        received = 0
        while received < 400:
            received += greedy.recv(65536).count(b"HTTP/1.1 200 ")
    assert Echo.order.index("other") < 100


def test_a_kept_alive_connection_upgrades_to_a_websocket(start):
    port = start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        # Once the server waited on the connection, its registration with
        # the hub must make way for the websocket's own reads.
        ask(client, "first")
        eventlet.sleep(0.05)
        key = base64.b64encode(os.urandom(16))
        client.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                       b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key
                       + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received:
            received += client.recv(4096)
        assert received.startswith(b"HTTP/1.1 101 ")
        eventlet.sleep(0.05)  # the websocket waits for a frame now
        payload = json.dumps({"method": "shout", "data": {"text": "hi"}}).encode()
        mask = b"\x01\x02\x03\x04"
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        client.sendall(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)
        while b'"HI"' not in received:
            chunk = client.recv(4096)
            assert chunk, received
            received += chunk


def test_header_names_seen_before_map_to_the_same_keys():
    parser = RequestParser(RequestLimits(), None, {})
    head = (b"GET / HTTP/1.1\r\nHost: a\r\nAccept: x\r\nX_Forwarded: evil\r\n"
            b"X-Forwarded: ok\r\naccept: y\r\n\r\n")
    parser.feed(head + head)
    first, second = parser.ready
    for environ in (first, second):
        assert environ["HTTP_ACCEPT"] == "x,y"
        assert environ["HTTP_X_FORWARDED"] == "ok"
    parser.feed(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n")
    assert parser.error.status == 400


class ClosingList(list):
    closed = 0

    def close(self):
        ClosingList.closed += 1


class ListServer(WebServer):
    def get_wsgi_app(self):
        def app(environ, start_response):
            start_response("200 OK", [("Content-Length", "2")])
            return ClosingList([b"ok"])

        return app


def test_a_list_result_with_a_close_method_is_closed(container_factory, web_config,
                                                      web_config_port):
    from nameko_like.web.handlers import HttpRequestHandler

    class Handler(HttpRequestHandler):
        server = ListServer()

    class Service:
        name = "service"

        @Handler.decorator("GET", "/")
        def index(self, request):
            return "unused"

    container_factory(Service, web_config).start()
    ClosingList.closed = 0
    with socket.create_connection(("127.0.0.1", web_config_port), timeout=5) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := client.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nok")
    assert ClosingList.closed == 1


# --- sockets the reader must leave to eventlet: TLS ------------------------------


def test_only_a_plain_green_socket_is_read_directly():
    import socket as stdlib_socket
    import ssl

    from nameko_like.green_sockets import raw_socket

    plain = socket.socket()
    tls = ssl.create_default_context().wrap_socket(
        stdlib_socket.socket(), server_hostname="localhost", do_handshake_on_connect=False)
    try:
        assert raw_socket(plain) is plain.fd
        assert raw_socket(socket.socket(tls)) is None  # a green socket over TLS
        assert raw_socket(plain.fd) is None  # not a green socket
    finally:
        plain.close()
        tls.close()


@pytest.fixture
def certificate(tmp_path):
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(tmp_path / "key.pem"),
         "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True)
    return str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")


def test_a_tls_connection_is_served_keep_alive(certificate):
    import eventlet.wsgi

    from eventlet.green import ssl

    from nameko_like.web.engine import HttpEngine

    def app(environ, start_response):
        body = environ["PATH_INFO"].encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]

    cert, key = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    listener = server_context.wrap_socket(eventlet.listen(("127.0.0.1", 0)), server_side=True)
    engine = HttpEngine(listener, app, RequestLimits(request_timeout=5, idle_timeout=5))

    def serve():
        client, address = listener.accept()
        client.settimeout(5)
        try:
            engine.process_request([address, client, eventlet.wsgi.STATE_IDLE])
        finally:
            client.close()

    server = eventlet.spawn(serve)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(listener.getsockname(), timeout=5)
    with context.wrap_socket(raw, server_hostname="localhost") as client:
        for name in ("one", "two", "three"):
            eventlet.sleep(0.02)  # the server waits for each request
            client.sendall(b"GET /%s HTTP/1.1\r\nHost: a\r\n\r\n" % name.encode())
            answer = b""
            while not answer.endswith(name.encode()):
                chunk = client.recv(4096)
                assert chunk, answer
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 ")
    server.wait()
    listener.close()


def serve_wsgi_app(server_class, container_factory, web_config):
    """Start a service whose web server's WSGI application is ``server_class``'s."""
    from nameko_like.web.handlers import HttpRequestHandler

    class Handler(HttpRequestHandler):
        server = server_class()

    class Service:
        name = "service"

        @Handler.decorator("GET", "/<path:any>")
        def index(self, request, any):
            return "unused"

    container_factory(Service, web_config).start()


def exchange(port, raw_requests):
    """Send ``raw_requests`` on one connection; everything read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(raw_requests)
        answer = b""
        while chunk := client.recv(4096):
            answer += chunk
    return answer


class BytesStatusServer(WebServer):
    """A WSGI application breaking the contract: a bytes status, or a bytes header name."""

    def get_wsgi_app(self):
        def app(environ, start_response):
            if environ["PATH_INFO"] == "/status":
                start_response(b"200 OK", [("Content-Length", "2")])
            else:
                start_response("200 OK", [(b"X-Foo", "1"), ("Content-Length", "2")])
            return [b"ok"]

        return app


@pytest.mark.parametrize("path", ["/status", "/header"])
def test_bytes_in_the_head_are_a_500_not_a_malformed_head(path, container_factory, web_config,
                                                          web_config_port):
    serve_wsgi_app(BytesStatusServer, container_factory, web_config)
    answer = exchange(web_config_port,
                      b"GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % path.encode())
    assert answer.startswith(b"HTTP/1.1 500 "), answer
    assert b"b'" not in answer


class WrongLengthServer(WebServer):
    """A WSGI application whose Content-Length is less than its body."""

    def get_wsgi_app(self):
        def app(environ, start_response):
            start_response("200 OK", [("Content-Length", "2")])
            body = [b"ok", b"EXTRA"]
            return body if environ["PATH_INFO"] == "/list" else iter(body)

        return app


@pytest.mark.parametrize("path", ["/list", "/stream"])
def test_a_body_longer_than_its_content_length_is_cut_and_the_connection_ends(
        path, container_factory, web_config, web_config_port):
    # Sent whole, the extra bytes would be read as the start of the next
    # response on the kept-alive connection.
    serve_wsgi_app(WrongLengthServer, container_factory, web_config)
    request = b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path.encode()
    answer = exchange(web_config_port, request * 2)  # pipelined
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nok"), answer
    assert answer.count(b"HTTP/1.1") == 1
