"""The shared WebServer: routing, lifecycle, concurrency and extension points."""

import gc
import time

import pytest
import requests

from nameko_like._eventlet import eventlet
from nameko_like.containers import ServiceContainer
from nameko_like.exceptions import ConfigurationError
from nameko_like.testing.utils import get_extension
from nameko_like.testing.web_fixtures import WebSession
from nameko_like.web.handlers import HttpRequestHandler, http
from nameko_like.web.server import WebServer, parse_address


class Routes:
    name = "routes"

    @http("GET", "/users/<int:user_id>")
    def user(self, request, user_id):
        return f"user {user_id!r}"

    @http("GET", "/names/<string:name>")
    def named(self, request, name):
        return f"name {name}"

    @http("GET", "/files/<path:path>")
    def files(self, request, path):
        return f"file {path}"

    @http("POST", "/users/<int:user_id>")
    def update(self, request, user_id):
        return f"updated {user_id}"

    @http("GET", "/dir/")
    def directory(self, request):
        return "dir"

    @http("GET", "/ping")
    def ping(self, request):
        return "pong"


@pytest.fixture
def routes(container_factory, web_config):
    container = container_factory(Routes, web_config)
    container.start()
    return container


@pytest.mark.parametrize("path, body", [
    ("/users/42", "user 42"),
    ("/names/ann", "name ann"),
    ("/names/%C3%A9t%C3%A9", "name été"),
    ("/files/a/b/c.txt", "file a/b/c.txt"),
])
def test_converters(routes, web_session, path, body):
    response = web_session.get(path)
    assert (response.status_code, response.text) == (200, body)


def test_converter_mismatch_is_404(routes, web_session):
    assert web_session.get("/users/abc").status_code == 404


def test_unknown_url_is_404(routes, web_session):
    assert web_session.get("/nowhere").status_code == 404


def test_same_rule_different_methods(routes, web_session):
    assert web_session.post("/users/3").text == "updated 3"
    assert web_session.get("/users/3").text == "user 3"


def test_wrong_method_is_405_with_allow(routes, web_session):
    response = web_session.delete("/users/3")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "POST"}


def test_missing_slash_redirects_to_the_request_host(routes, web_session, web_config_port):
    response = web_session.get("/dir", allow_redirects=False)
    assert response.status_code == 308
    assert response.headers["Location"] == f"http://127.0.0.1:{web_config_port}/dir/"


def test_keep_alive_connection_serves_many_requests(routes, web_session):
    for number in range(5):
        assert web_session.get(f"/users/{number}").text == f"user {number}"


def test_port_zero_binds_a_free_port(container_factory, empty_config):
    config = dict(empty_config, WEB_SERVER_ADDRESS="127.0.0.1:0")
    container = container_factory(Routes, config)
    container.start()
    server = get_extension(container, WebServer)
    assert server.port > 0
    with WebSession(f"http://127.0.0.1:{server.port}") as session:
        assert session.get("/ping").text == "pong"


def test_all_entrypoints_share_one_server(routes):
    servers = {entrypoint.server for entrypoint in routes.entrypoints}
    assert len(servers) == 1


@pytest.mark.parametrize("address, expected", [
    ("0.0.0.0:8000", ("0.0.0.0", 8000)),
    ("127.0.0.1:0", ("127.0.0.1", 0)),
    ("[::1]:8080", ("::1", 8080)),
    (":9000", ("0.0.0.0", 9000)),
])
def test_parse_address(address, expected):
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["localhost", "host:port", "host:70000"])
def test_bad_address_fails_with_the_config_key(container_factory, empty_config, address):
    container = container_factory(Routes, dict(empty_config, WEB_SERVER_ADDRESS=address))
    with pytest.raises(ConfigurationError, match="WEB_SERVER_ADDRESS"):
        container.start()


class Slow:
    name = "slow"

    @http("GET", "/sleep/<float:seconds>")
    def sleep(self, request, seconds):
        eventlet.sleep(seconds)
        return "slept"

    @http("GET", "/ping")
    def ping(self, request):
        return "pong"


def _get_in_background(url):
    return eventlet.spawn(WebSession("").get, url)


def test_slow_requests_run_in_parallel_up_to_max_workers(
    container_factory, web_config, web_config_port
):
    container = container_factory(Slow, dict(web_config, max_workers=4))
    container.start()
    url = f"http://127.0.0.1:{web_config_port}/sleep/0.5"
    started = time.monotonic()
    threads = [_get_in_background(url) for _ in range(8)]
    assert [thread.wait().text for thread in threads] == ["slept"] * 8
    elapsed = time.monotonic() - started
    # 4 workers: two waves of 0.5 s, not one (unbounded) nor eight (serial).
    assert 0.95 < elapsed < 2.0


def test_graceful_stop_lets_the_in_flight_request_finish(
    container_factory, web_config, web_config_port
):
    container = container_factory(Slow, web_config)
    container.start()
    in_flight = _get_in_background(f"http://127.0.0.1:{web_config_port}/sleep/0.5")
    eventlet.sleep(0.2)
    container.stop()
    response = in_flight.wait()
    assert (response.status_code, response.text) == (200, "slept")
    with pytest.raises(requests.ConnectionError):
        WebSession(f"http://127.0.0.1:{web_config_port}").get("/ping", timeout=2)


class Upload:
    name = "upload"

    @http("POST", "/upload")
    def upload(self, request):
        return b"got %d" % len(request.get_data())


def test_a_body_on_its_way_is_not_closed_to_make_room(
    container_factory, web_config, web_config_port
):
    # With every connection slot taken, a new client makes the server close
    # an idle connection; one whose head came at once and whose body is
    # still arriving is in a request, not idle.
    container = container_factory(Upload, dict(web_config, WEB_MAX_CONNECTIONS=1))
    container.start()
    with eventlet.green.socket.create_connection(("127.0.0.1", web_config_port)) as client:
        client.sendall(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345")
        eventlet.sleep(0.2)
        waiting = eventlet.spawn(WebSession(f"http://127.0.0.1:{web_config_port}").get, "/none")
        eventlet.sleep(0.6)  # the server looks for an idle connection to close meanwhile
        client.sendall(b"67890")
        answer = b""
        while not answer.endswith(b"got 10") and (chunk := client.recv(4096)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"got 10"), answer
    assert waiting.wait().status_code == 404  # served once the upload's connection ended


def test_stop_closes_idle_keep_alive_connections(container_factory, web_config, web_session):
    container = container_factory(Slow, web_config)
    container.start()
    assert web_session.get("/ping").text == "pong"  # leaves an idle connection open
    started = time.monotonic()
    container.stop()
    assert time.monotonic() - started < 2


def test_kill_closes_everything(container_factory, web_config, web_config_port):
    container = container_factory(Slow, web_config)
    container.start()
    in_flight = _get_in_background(f"http://127.0.0.1:{web_config_port}/sleep/5.0")
    eventlet.sleep(0.2)
    container.kill()
    with pytest.raises(requests.ConnectionError):
        in_flight.wait()


class HeaderContextServer(WebServer):
    def context_data_from_headers(self, request):
        return {"user_id": request.headers.get("X-User")}

    def get_wsgi_app(self):
        app = super().get_wsgi_app()

        def tagging(environ, start_response):
            def tag(status, headers, exc_info=None):
                return start_response(status, [*headers, ("X-Middleware", "on")], exc_info)
            return app(environ, tag)

        return tagging


class CustomHandler(HttpRequestHandler):
    server = HeaderContextServer()


custom_http = CustomHandler.decorator


def test_subclassed_server_adds_middleware_and_context_data(
    container_factory, web_config, web_session
):
    from nameko_like.extensions import DependencyProvider

    seen = []

    class Recorder(DependencyProvider):
        def worker_setup(self, worker_ctx):
            seen.append(worker_ctx.data.get("user_id"))

    class Service:
        name = "service"
        recorder = Recorder()

        @custom_http("GET", "/context")
        def context(self, request):
            return "ok"

    container = container_factory(Service, web_config)
    container.start()
    response = web_session.get("/context", headers={"X-User": "ann"})
    assert response.text == "ok"
    assert response.headers["X-Middleware"] == "on"
    assert seen == ["ann"]


def test_two_web_server_classes_in_one_container_fail_fast(web_config):
    class Mixed:
        name = "mixed"

        @http("GET", "/a")
        def a(self, request):
            return "a"

        @custom_http("GET", "/b")
        def b(self, request):
            return "b"

    with pytest.raises(ConfigurationError, match="same class on every web entrypoint") as info:
        ServiceContainer(Mixed, web_config)
    # The traceback holds the half-built container; the leak check must not
    # find it.
    del info
    gc.collect()


def test_two_http_services_on_one_address_are_refused_not_split():
    # With SO_REUSEPORT both would listen and each get half the connections,
    # answering 404 for the other's routes; the second must fail to start.
    import socket as socket_module

    from nameko_like.exceptions import ConfigurationError
    from nameko_like.runners import ServiceRunner
    from nameko_like.web.handlers import http

    class First:
        name = "first_site"

        @http("GET", "/first")
        def first(self, request):
            return "first"

    class Second:
        name = "second_site"

        @http("GET", "/second")
        def second(self, request):
            return "second"

    with socket_module.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    runner = ServiceRunner({"AMQP_URI": "memory://", "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"})
    runner.add_service(First)
    runner.add_service(Second)
    try:
        with pytest.raises(ConfigurationError, match=r"Address already in use; another process, "
                                                     r"or another service with @http"):
            runner.start()
    finally:
        runner.kill()
