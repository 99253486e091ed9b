"""The HTTP/1.1 layer, driven with raw sockets: parsing, limits, framing."""

import logging

import pytest
from werkzeug.wrappers import Response

from nameko_like._eventlet import eventlet
from nameko_like.testing.web_fixtures import raw_http
from nameko_like.web.handlers import HttpRequestHandler, http
from nameko_like.web.server import WebServer

from eventlet.green import socket


class Echo:
    name = "echo"
    calls = []

    @http("GET,POST,PUT", "/echo")
    def echo(self, request):
        Echo.calls.append(request.method)
        return request.get_data()

    @http("GET", "/stream")
    def stream(self, request):
        return Response(iter([b"one,", b"", b"two"]))

    @http("GET", "/path/<path:rest>")
    def path(self, request, rest):
        return f"{request.path}|{request.query_string.decode()}"

    @http("GET", "/bad-header")
    def bad_header(self, request):
        return 200, {"X-Bad": "a\r\nSet-Cookie: evil=1"}, "body"


@pytest.fixture
def port(container_factory, web_config, web_config_port):
    Echo.calls.clear()
    config = dict(web_config, WEB_MAX_CONTENT_LENGTH=1000, WEB_SOCKET_TIMEOUT=0.5)
    container_factory(Echo, config).start()
    return web_config_port


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:80]
    return int(response[9:12])


def body_of(response: bytes) -> bytes:
    return response.partition(b"\r\n\r\n")[2]


GET = b"GET /echo HTTP/1.1\r\nHost: a\r\n"
POST = b"POST /echo HTTP/1.1\r\nHost: a\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n"

MALFORMED = {
    "bad chunk size": (CHUNKED + b"\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
    "header without colon": (GET + b"NoColonHere\r\n\r\n", 400),
    "space in header name": (GET + b"Bad Name: x\r\n\r\n", 400),
    "obs-fold": (GET + b"X-A: b\r\n c\r\n\r\n", 400),
    "control char in value": (GET + b"X-A: b\x00c\r\n\r\n", 400),
    "bad Content-Length": (POST + b"Content-Length: abc\r\n\r\nhello", 400),
    "negative Content-Length": (POST + b"Content-Length: -5\r\n\r\nhello", 400),
    "conflicting Content-Lengths": (
        POST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    "Content-Length and chunked": (
        CHUNKED + b"Content-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400),
    "unknown transfer coding": (POST + b"Transfer-Encoding: gzip\r\n\r\nabc", 400),
    "unsupported coding before chunked": (
        POST + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    "short body then EOF": (POST + b"Content-Length: 100\r\n\r\nhello", 400),
    "chunked body then EOF": (CHUNKED + b"\r\n10\r\nabc", 400),
    "HTTP/9.9": (b"GET /echo HTTP/9.9\r\nHost: a\r\n\r\n", 505),
    "garbage version": (b"GET /echo FOO/1.1\r\nHost: a\r\n\r\n", 400),
    "garbage request line": (b"hello\r\n\r\n", 400),
    "bad %-escape": (b"GET /echo%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "truncated %-escape in query": (b"GET /echo?a=%4 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "bad method token": (b"G(T /echo HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    "HTTP/1.1 without Host": (b"GET /echo HTTP/1.1\r\n\r\n", 400),
    "unsupported Expect": (POST + b"Expect: magic\r\nContent-Length: 1\r\n\r\nx", 417),
    "head cut short": (GET + b"X-Partial", 400),
    "URL too long": (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    "too many headers": (GET + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n", 431),
    "header line too long": (GET + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    "head too large": (
        GET + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 8000) for i in range(9)) + b"\r\n", 431),
}


@pytest.mark.parametrize("request_bytes, status", MALFORMED.values(), ids=list(MALFORMED))
def test_malformed_requests_are_refused_before_any_worker(port, request_bytes, status):
    response = raw_http(port, request_bytes)
    assert status_of(response) == status
    assert b"Connection: close" in response
    assert b"Traceback" not in response
    assert Echo.calls == []


def test_request_body_limit_from_content_length_needs_no_body(port):
    # No body is sent at all: the answer comes from the head alone.
    head = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n"
    response = raw_http(port, head, half_close=False, timeout=2)
    assert status_of(response) == 413
    assert Echo.calls == []


def test_chunked_body_over_the_limit_is_413(port):
    chunk = b"%x\r\n%s\r\n" % (600, b"x" * 600)
    request = CHUNKED + b"\r\n" + chunk * 2 + b"0\r\n\r\n"
    assert status_of(raw_http(port, request)) == 413
    assert Echo.calls == []


def test_body_at_the_limit_is_accepted(port):
    request = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" + b"x" * 1000
    response = raw_http(port, request)
    assert status_of(response) == 200
    assert body_of(response) == b"x" * 1000


def test_chunked_body_is_decoded(port):
    request = (b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
    response = raw_http(port, request)
    assert status_of(response) == 200
    assert body_of(response) == b"hello world"


def test_expect_continue_gets_an_interim_response(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(POST + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"ok")
        response = sock.recv(1000)
    assert status_of(response) == 200
    assert body_of(response) == b"ok"


def test_expect_continue_with_a_too_large_body_gets_413_at_once(port):
    head = b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n"
    assert status_of(raw_http(port, head, half_close=False, timeout=2)) == 413


def test_keep_alive_and_pipelining(port):
    two = (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\none"
           b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    response = raw_http(port, two)
    assert response.count(b"HTTP/1.1 200 OK") == 2
    assert Echo.calls == ["POST", "GET"]


def test_http_1_0_closes_unless_asked_to_keep_alive(port):
    response = raw_http(port, b"GET /echo HTTP/1.0\r\n\r\n", half_close=False)
    assert b"Connection: close" in response
    two = b"GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2
    response = raw_http(port, two, half_close=False, timeout=1)
    assert response.count(b"HTTP/1.1 200 OK") == 2
    assert b"Connection: keep-alive" in response


def test_absolute_form_target(port):
    request = b"GET http://example.com/path/x?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"
    response = raw_http(port, request)
    assert body_of(response) == b"/path/x|q=1"


def test_percent_escapes_are_decoded(port):
    response = raw_http(port, b"GET /path/a%20b%2Fc?x=%41 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert body_of(response) == b"/path/a b/c|x=%41"


def test_streamed_response_is_chunked(port):
    response = raw_http(port, b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in response
    assert body_of(response) == b"4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n"


def test_streamed_response_to_http_1_0_ends_with_the_connection(port):
    request = b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    response = raw_http(port, request, half_close=False)
    assert b"Connection: close" in response
    assert body_of(response) == b"one,two"


def test_line_break_in_a_response_header_is_refused(port):
    response = raw_http(port, b"GET /bad-header HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(response) == 500
    assert b"evil" not in response


def test_incomplete_request_head_times_out_with_408(port):
    started = eventlet.hubs.get_hub().clock()
    response = raw_http(port, b"GET /echo HTTP/1.1\r\nHost: a\r\n", half_close=False)
    assert status_of(response) == 408
    assert eventlet.hubs.get_hub().clock() - started < 2


def test_idle_connection_is_closed_silently(port):
    assert raw_http(port, b"", half_close=False, timeout=3) == b""


def test_bodies_are_never_logged(port, caplog):
    caplog.set_level(logging.DEBUG)
    raw_http(port, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 14\r\n\r\nsecret-payload")
    raw_http(port, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 99\r\n\r\nsecret-payload")
    assert caplog.records
    assert not any("secret-payload" in record.getMessage() for record in caplog.records)


def test_access_log_is_info_and_can_be_silenced(port, caplog):
    caplog.set_level(logging.INFO)
    raw_http(port, b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
    [record] = [r for r in caplog.records if r.name == "nameko_like.web.access"]
    assert record.levelno == logging.INFO
    assert '"GET /echo HTTP/1.1" 200' in record.getMessage()
    caplog.clear()
    caplog.set_level(logging.WARNING, logger="nameko_like.web.access")
    raw_http(port, b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
    assert not [r for r in caplog.records if r.name == "nameko_like.web.access"]


class FailingServer(WebServer):
    def get_wsgi_app(self):
        def app(environ, start_response):
            raise RuntimeError("broken middleware")
        return app


class FailingHandler(HttpRequestHandler):
    server = FailingServer()


def test_failing_wsgi_app_gets_an_empty_500(container_factory, web_config, web_config_port, caplog):
    class Service:
        name = "service"

        @FailingHandler.decorator("GET", "/")
        def index(self, request):
            return "never"

    container_factory(Service, web_config).start()
    response = raw_http(web_config_port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status_of(response) == 500
    assert body_of(response) == b""
    assert any("broken middleware" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
