"""An @http worker runs in its request's greenthread: the worker's life cycle stays whole.

Slots, dependency hooks, instrumentation, graceful stop and kill behave as
for a worker of its own; context variables do not carry over from one
request to the next on a keep-alive connection; a container whose
``spawn_worker`` is replaced still gets every HTTP worker through it.
"""

import contextvars
import socket
import time

import pytest
import requests

from nameko_like import instrumentation
from nameko_like._eventlet import eventlet
from nameko_like.containers import ServiceContainer
from nameko_like.extensions import DependencyProvider
from nameko_like.testing.services import entrypoint_waiter
from nameko_like.testing.web_fixtures import WebSession
from nameko_like.web.handlers import http

_seen = contextvars.ContextVar("seen", default="unset")


class Recorder(DependencyProvider):
    """Records each hook with the worker's method name (and result)."""

    def __init__(self):
        self.calls = []

    def get_dependency(self, worker_ctx):
        self.calls.append(("get_dependency", worker_ctx.entrypoint.method_name))
        return self.calls

    def worker_setup(self, worker_ctx):
        if worker_ctx.entrypoint.method_name == "broken_setup":
            raise RuntimeError("setup failed")
        self.calls.append(("worker_setup", worker_ctx.entrypoint.method_name))

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        self.calls.append(("worker_result", worker_ctx.entrypoint.method_name, result,
                           exc_info and exc_info[0]))

    def worker_teardown(self, worker_ctx):
        self.calls.append(("worker_teardown", worker_ctx.entrypoint.method_name))


class Service:
    name = "service"

    recorder = Recorder()

    @http("GET", "/ok")
    def ok(self, request):
        return "fine"

    @http("GET", "/fails")
    def fails(self, request):
        raise ValueError("nope")

    @http("GET", "/sleep/<float:seconds>")
    def sleep(self, request, seconds):
        eventlet.sleep(seconds)
        return "slept"

    @http("GET", "/context")
    def context(self, request):
        previous = _seen.get()
        _seen.set("set by an earlier request")
        return previous

    @http("GET", "/broken-setup")
    def broken_setup(self, request):
        return "never"


def _recorder(container):
    return next(dep for dep in container.dependencies if isinstance(dep, Recorder))


def _get_in_background(url):
    return eventlet.spawn(WebSession("").get, url)


def test_dependency_hooks_run_in_order_with_the_outcome(container_factory, web_config,
                                                         web_session):
    container = container_factory(Service, web_config)
    container.start()
    assert web_session.get("/ok").text == "fine"
    assert web_session.get("/fails").status_code == 500
    assert _recorder(container).calls == [
        ("get_dependency", "ok"), ("worker_setup", "ok"),
        ("worker_result", "ok", "fine", None), ("worker_teardown", "ok"),
        ("get_dependency", "fails"), ("worker_setup", "fails"),
        ("worker_result", "fails", None, ValueError), ("worker_teardown", "fails"),
    ]
    assert container.free_worker_slots == container.max_workers


def test_a_request_in_progress_holds_a_worker_slot(container_factory, web_config,
                                                   web_config_port):
    container = container_factory(Service, dict(web_config, max_workers=2))
    container.start()
    in_flight = _get_in_background(f"http://127.0.0.1:{web_config_port}/sleep/0.3")
    eventlet.sleep(0.15)
    assert container.free_worker_slots == 1
    assert in_flight.wait().text == "slept"
    assert container.free_worker_slots == 2


def test_observers_see_the_worker_announced_before_it_starts(container_factory, web_config,
                                                              web_session):
    events = []

    class Watcher(instrumentation.Observer):
        def worker_spawned(self, worker_ctx, origin):
            events.append(("spawned", worker_ctx.call_id, origin.path))

        def worker_started(self, worker_ctx):
            events.append(("started", worker_ctx.call_id))

        def worker_finished(self, worker_ctx, outcome, duration):
            events.append(("finished", worker_ctx.call_id, outcome))

    container = container_factory(Service, web_config)
    container.start()
    watcher = Watcher()
    instrumentation.register(watcher)
    try:
        assert web_session.get("/ok").text == "fine"
    finally:
        instrumentation.unregister(watcher)
    call_id = events[0][1]
    assert events == [("spawned", call_id, "/ok"), ("started", call_id),
                      ("finished", call_id, instrumentation.OK)]


def test_context_variables_do_not_carry_over_between_requests(container_factory, web_config,
                                                               web_session):
    container = container_factory(Service, web_config)
    container.start()
    # one keep-alive connection: both requests are served by one greenthread
    assert web_session.get("/context").text == "unset"
    assert web_session.get("/context").text == "unset"


def test_stop_kills_a_worker_past_the_grace_period_and_tears_it_down(
    container_factory, web_config, web_config_port
):
    container = container_factory(Service, dict(web_config, SHUTDOWN_GRACE_PERIOD=0.3))
    container.start()
    in_flight = _get_in_background(f"http://127.0.0.1:{web_config_port}/sleep/10.0")
    eventlet.sleep(0.2)
    started = time.monotonic()
    container.stop()
    assert time.monotonic() - started < 3
    with pytest.raises(requests.ConnectionError):
        in_flight.wait()
    assert _recorder(container).calls[-1] == ("worker_teardown", "sleep")
    assert container.free_worker_slots == container.max_workers


def test_kill_tears_down_a_worker_in_progress(container_factory, web_config, web_config_port):
    container = container_factory(Service, web_config)
    container.start()
    in_flight = _get_in_background(f"http://127.0.0.1:{web_config_port}/sleep/10.0")
    eventlet.sleep(0.2)
    container.kill()
    with pytest.raises(requests.ConnectionError):
        in_flight.wait()
    assert ("worker_teardown", "sleep") in _recorder(container).calls


def test_a_failing_worker_setup_answers_500_and_kills_the_container(
    container_factory, web_config, web_session
):
    container = container_factory(Service, web_config)
    container.start()
    response = web_session.get("/broken-setup")
    assert response.status_code == 500
    assert "ContainerBeingKilled" in response.text
    with pytest.raises(RuntimeError, match="setup failed"):
        container.wait()


def test_entrypoint_waiter_sees_http_workers(container_factory, web_config, web_config_port):
    container = container_factory(Service, web_config)
    container.start()
    with entrypoint_waiter(container, "ok") as result:
        in_flight = _get_in_background(f"http://127.0.0.1:{web_config_port}/ok")
    assert result.get() == "fine"
    assert in_flight.wait().text == "fine"


class CountingContainer(ServiceContainer):
    spawned = 0

    def spawn_worker(self, *args, **kwargs):
        CountingContainer.spawned += 1
        return super().spawn_worker(*args, **kwargs)


def test_a_container_overriding_spawn_worker_gets_every_http_worker(web_config, web_session):
    CountingContainer.spawned = 0
    container = CountingContainer(Service, web_config)
    container.start()
    try:
        assert web_session.get("/ok").text == "fine"
        assert web_session.get("/fails").status_code == 500
    finally:
        container.kill()
    assert CountingContainer.spawned == 2


class Order:
    name = "order"

    served = []

    @http("GET", "/order/<name>")
    def order(self, request, name):
        Order.served.append(name)
        return name


def test_a_busy_connection_lets_the_others_take_turns(container_factory, web_config,
                                                      web_config_port):
    # Pipelined requests are all there at once: served in a row, with no
    # turn for the others, a second client would wait for the whole burst.
    Order.served = []
    container = container_factory(Order, web_config)
    container.start()
    burst = 200
    with socket.create_connection(("127.0.0.1", web_config_port)) as busy, \
            socket.create_connection(("127.0.0.1", web_config_port)) as other:
        eventlet.sleep(0.1)  # both accepted, waiting for a request
        busy.sendall(b"GET /order/busy HTTP/1.1\r\nHost: test\r\n\r\n" * burst)
        other.sendall(b"GET /order/other HTTP/1.1\r\nHost: test\r\n\r\n")
        answer = b""
        while not answer.endswith(b"other"):
            answer += other.recv(4096)
        received = b""
        while received.count(b"busy") < burst:
            received += busy.recv(65536)
    assert Order.served.count("busy") == burst
    assert Order.served.index("other") < burst // 2


class ContainerAccess(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return self.container


class SelfStopping:
    name = "self_stopping"

    container = ContainerAccess()

    @http("GET", "/kill")
    def kill(self, request):
        self.container.kill()
        return "killed"

    @http("GET", "/stop")
    def stop(self, request):
        self.container.stop()
        return "stopped"


@pytest.mark.parametrize("path", ["/kill", "/stop"])
def test_a_worker_can_stop_or_kill_its_own_container(container_factory, web_config,
                                                     web_config_port, path):
    container = container_factory(SelfStopping, dict(web_config, SHUTDOWN_GRACE_PERIOD=0.2))
    container.start()
    in_flight = _get_in_background(f"http://127.0.0.1:{web_config_port}{path}")
    with eventlet.Timeout(5):
        container.wait()  # the stop or kill went through to its end
    assert not container.running
    try:
        in_flight.wait()
    except requests.ConnectionError:
        pass  # the connection may be closed before the answer
