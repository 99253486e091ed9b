"""The HTTP engines: httptools parsing (pipelining, chunked, keep-alive), and
the eventlet.wsgi fallback chosen by WEB_ENGINE or when httptools is missing."""

import logging
import sys

import pytest

from nameko_like.exceptions import ConfigurationError
from nameko_like.testing.utils import get_extension
from nameko_like.testing.web_fixtures import raw_http
from nameko_like.web.body import RequestRejected
from nameko_like.web.engine import EventletEngine, HttpEngine
from nameko_like.web.handlers import HttpRequestHandler, http
from nameko_like.web.limits import RequestLimits
from nameko_like.web.parser import RequestParser
from nameko_like.web.server import WebServer
from nameko_like.web.websocket import rpc

from eventlet.green import socket


class Echo:
    name = "echo"

    @http("GET,POST", "/echo")
    def echo(self, request):
        return request.method.encode() + b":" + request.get_data()

    @rpc
    def shout(self, socket_id, text):
        return text.upper()


def start(container_factory, web_config, **config):
    container = container_factory(Echo, dict(web_config, WEB_SOCKET_TIMEOUT=1, **config))
    container.start()
    return get_extension(container, WebServer)


def responses(raw):
    """The bodies of the responses in ``raw`` (each with a Content-Length)."""
    bodies = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK"), head
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        bodies.append(rest[:length])
        raw = rest[length:]
    return bodies


def post(body, close=False):
    return (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n%s\r\n%s"
            % (len(body), b"Connection: close\r\n" if close else b"", body))


def test_httptools_is_the_default_engine(container_factory, web_config):
    server = start(container_factory, web_config)
    assert isinstance(server._wsgi_server, HttpEngine)


def test_pipelined_requests_are_answered_in_order(container_factory, web_config, web_config_port):
    start(container_factory, web_config)
    chunked = (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\ntwo\r\n0\r\n\r\n")
    requests = [post(b"one"), chunked, b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"]
    requests += [post(b"n%d" % number) for number in range(20)] + [post(b"last", close=True)]
    bodies = responses(raw_http(web_config_port, b"".join(requests)))
    assert bodies == ([b"POST:one", b"POST:two", b"GET:"]
                      + [b"POST:n%d" % number for number in range(20)] + [b"POST:last"])


def test_pipelined_request_after_a_bad_one_is_not_served(container_factory, web_config,
                                                         web_config_port):
    start(container_factory, web_config)
    raw = raw_http(web_config_port, post(b"ok") + b"GET /echo HTTP/1.1\r\nBad Name: x\r\n\r\n"
                   + post(b"never"))
    first, _, second = raw.partition(b"HTTP/1.1 400 ")
    assert responses(first) == [b"POST:ok"]
    assert b"Connection: close" in second and b"never" not in second


def test_request_sent_a_byte_at_a_time_is_parsed(container_factory, web_config, web_config_port):
    start(container_factory, web_config)
    request = (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    with socket.create_connection(("127.0.0.1", web_config_port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for index in range(len(request)):
            sock.sendall(request[index:index + 1])
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
    assert responses(answer) == [b"POST:hello world"]


def test_keep_alive_connection_serves_requests_one_after_another(
        container_factory, web_config, web_config_port):
    start(container_factory, web_config)
    with socket.create_connection(("127.0.0.1", web_config_port), timeout=5) as sock:
        for number in range(3):
            sock.sendall(post(b"r%d" % number))
            answer = b""
            while not answer.endswith(b"r%d" % number):
                chunk = sock.recv(4096)
                assert chunk, "the server closed a kept-alive connection"
                answer += chunk
            assert b"Connection: close" not in answer
            assert responses(answer) == [b"POST:r%d" % number]


def test_parser_keeps_requests_before_an_error_in_order():
    parser = RequestParser(RequestLimits(max_content_length=10), None, {})
    parser.feed(post(b"a") + post(b"b") + post(b"x" * 11))
    assert [environ["wsgi.input"].read() for environ in parser.ready] == [b"a", b"b"]
    assert isinstance(parser.error, RequestRejected)
    assert parser.error.status == 413


@pytest.mark.parametrize("engine", ["eventlet", "httptools"])
def test_both_engines_serve_requests_websockets_and_limits(
        container_factory, web_config, web_config_port, websocket, engine):
    server = start(container_factory, web_config, WEB_ENGINE=engine, WEB_MAX_CONTENT_LENGTH=100,
                   WEB_MAX_WEBSOCKET_MESSAGE=10000)
    assert isinstance(server._wsgi_server, EventletEngine if engine == "eventlet" else HttpEngine)
    bodies = responses(raw_http(web_config_port, post(b"one") + post(b"two", close=True)))
    assert bodies == [b"POST:one", b"POST:two"]
    too_large = raw_http(web_config_port, post(b"x" * 101))
    assert too_large.startswith(b"HTTP/1.1 413 ")
    client = websocket()
    assert client.rpc("shout", text="hi") == "HI"


def test_missing_httptools_falls_back_to_eventlet_with_a_warning(
        container_factory, web_config, web_config_port, monkeypatch, caplog):
    # As if httptools were not installed: its import, and so our modules
    # built on it, fail.
    monkeypatch.setitem(sys.modules, "httptools", None)
    for module in ("nameko_like.web.http_connection", "nameko_like.web.reader",
                   "nameko_like.web.parser"):
        monkeypatch.delitem(sys.modules, module)
    server = start(container_factory, web_config)
    assert isinstance(server._wsgi_server, EventletEngine)
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert "httptools" in warning.getMessage() and "pip install" in warning.getMessage()
    assert responses(raw_http(web_config_port, post(b"ok", close=True))) == [b"POST:ok"]


def test_unknown_engine_is_a_configuration_error(container_factory, web_config):
    with pytest.raises(ConfigurationError, match="WEB_ENGINE"):
        start(container_factory, web_config, WEB_ENGINE="tornado")


class NamekoStyleServer(WebServer):
    """Overrides get_wsgi_server as a Nameko service would: an eventlet.wsgi.Server."""

    def get_wsgi_server(self, sock, wsgi_app, protocol=None):
        import eventlet.wsgi

        return eventlet.wsgi.Server(sock, sock.getsockname(), wsgi_app,
                                    protocol=eventlet.wsgi.HttpProtocol, log_output=False)


class NamekoStyleHandler(HttpRequestHandler):
    server = NamekoStyleServer()


def test_get_wsgi_server_override_returning_eventlets_server(
        container_factory, web_config, web_config_port):
    class Service:
        name = "service"

        @NamekoStyleHandler.decorator("POST", "/echo")
        def echo(self, request):
            return b"POST:" + request.get_data()

    container = container_factory(Service, web_config)
    container.start()
    assert responses(raw_http(web_config_port, post(b"hi", close=True))) == [b"POST:hi"]
    container.stop()
