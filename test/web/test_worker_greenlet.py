"""An @http worker runs in a greenlet of its own, switched to from its connection's greenthread.

Greenlet-local state (``threading.local`` under monkey-patching) must not
carry over from one request to the next on a keep-alive connection (behind a
reverse proxy that connection carries many users' requests); timeouts in the
worker, errors, and kills behave as in a worker greenthread; nothing is left
behind.
"""

import gc
from http.client import HTTPConnection
import threading

import pytest
from greenlet import GreenletExit
import requests

from nameko_like._eventlet import eventlet
from nameko_like.web.handlers import http
from nameko_like.worker_greenlet import WorkerGreenlet, run_in_child_greenlet

_local = threading.local()


class Service:
    name = "service"

    @http("GET", "/local")
    def local(self, request):
        previous = getattr(_local, "user", "empty")
        _local.user = request.args.get("user", "someone")
        return previous

    @http("GET", "/local-after-sleep")
    def local_after_sleep(self, request):
        # blocking once makes eventlet's hub the worker greenlet's parent
        eventlet.sleep(0.01)
        previous = getattr(_local, "user", "empty")
        _local.user = "sleeper"
        return previous

    @http("GET", "/timeout")
    def timeout(self, request):
        try:
            with eventlet.Timeout(0.05):
                eventlet.sleep(5)
        except eventlet.Timeout:
            return "timed out"
        return "not timed out"

    @http("GET", "/sleep")
    def sleep(self, request):
        eventlet.sleep(10)
        return "slept"

    @http("GET", "/leaky-timeout")
    def leaky_timeout(self, request):
        eventlet.Timeout(0.1)  # armed and never cancelled: a user's slip
        return "leaked"

    @http("GET", "/slow")
    def slow(self, request):
        eventlet.sleep(0.3)
        return "slow done"


def _live_worker_greenlets():
    return [obj for obj in gc.get_objects()
            if isinstance(obj, WorkerGreenlet) and not obj.dead]


def test_threading_local_is_fresh_for_each_request_on_one_connection(
    container_factory, web_config, web_config_port
):
    assert threading.local.__module__ == "eventlet.corolocal"  # the suite is monkey-patched
    container = container_factory(Service, web_config)
    container.start()
    conn = HTTPConnection("127.0.0.1", web_config_port, timeout=5)
    try:
        seen = []
        sockets = set()
        for path in ["/local?user=alice", "/local?user=bob", "/local-after-sleep",
                     "/local?user=carol"]:
            conn.request("GET", path)
            sockets.add(id(conn.sock))
            response = conn.getresponse()
            assert response.status == 200
            seen.append(response.read().decode())
    finally:
        conn.close()
    assert len(sockets) == 1  # one keep-alive connection served them all
    assert seen == ["empty", "empty", "empty", "empty"]


def test_a_timeout_inside_the_worker_fires_in_it(container_factory, web_config, web_session):
    container = container_factory(Service, web_config)
    container.start()
    assert web_session.get("/timeout").text == "timed out"
    assert web_session.get("/local").text == "empty"  # the connection still serves


def test_a_timeout_a_finished_worker_left_armed_spares_the_next_request(
    container_factory, web_config, web_config_port
):
    # The leaked timeout fires into the dead worker greenlet: it must go to
    # the hub (which reports it), not to the connection's greenthread, by
    # then waiting for the next request's worker.
    container = container_factory(Service, web_config)
    container.start()
    conn = HTTPConnection("127.0.0.1", web_config_port, timeout=5)
    try:
        conn.request("GET", "/leaky-timeout")
        first = conn.getresponse()
        assert (first.status, first.read()) == (200, b"leaked")
        conn.request("GET", "/slow")
        second = conn.getresponse()
        assert (second.status, second.read()) == (200, b"slow done")
    finally:
        conn.close()


def test_no_worker_greenlet_is_left_behind(container_factory, web_config, web_session,
                                           web_config_port):
    container = container_factory(Service, web_config)
    container.start()
    for _ in range(3):
        assert web_session.get("/local-after-sleep").status_code == 200
    in_flight = eventlet.spawn(requests.get, f"http://127.0.0.1:{web_config_port}/sleep")
    eventlet.sleep(0.2)
    assert len(_live_worker_greenlets()) == 1
    container.kill()
    with pytest.raises(requests.ConnectionError):
        in_flight.wait()
    assert _live_worker_greenlets() == []
    assert container.free_worker_slots == container.max_workers


def test_killing_the_caller_kills_its_worker_first():
    steps = []

    def work():
        try:
            eventlet.sleep(10)
        finally:
            steps.append("worker torn down")

    def caller():
        try:
            run_in_child_greenlet({}, "worker", work)
        finally:
            steps.append("caller ended")

    thread = eventlet.spawn(caller)
    eventlet.sleep(0.05)
    thread.kill()
    assert steps == ["worker torn down", "caller ended"]
    assert _live_worker_greenlets() == []


def test_killing_the_worker_ends_the_caller_with_greenlet_exit():
    registry = {}
    outcome = []

    def caller():
        try:
            run_in_child_greenlet(registry, "worker", eventlet.sleep, 10)
        except BaseException as exc:
            outcome.append(type(exc).__name__)
            raise

    thread = eventlet.spawn(caller)
    eventlet.sleep(0.05)
    eventlet.kill(registry["worker"])
    with pytest.raises(GreenletExit):
        thread.wait()
    assert outcome == ["GreenletExit"]


def test_an_error_the_worker_lets_out_reaches_the_caller():
    def work():
        eventlet.sleep(0)
        raise KeyError("out")

    with pytest.raises(KeyError, match="out"):
        run_in_child_greenlet({}, "worker", work)


def test_a_timeout_of_the_caller_kills_the_worker_and_reaches_the_caller():
    steps = []

    def work():
        try:
            eventlet.sleep(10)
        finally:
            steps.append("worker torn down")

    with pytest.raises(eventlet.Timeout), eventlet.Timeout(0.05):
        run_in_child_greenlet({}, "worker", work)
    assert steps == ["worker torn down"]
    assert _live_worker_greenlets() == []
