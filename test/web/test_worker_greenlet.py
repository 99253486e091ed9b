"""An @http worker runs in a greenlet of its own, switched to from its connection's greenthread.

Greenlet-local state (``threading.local`` under monkey-patching) must not
carry over from one request to the next on a keep-alive connection (behind a
reverse proxy that connection carries many users' requests); timeouts in the
worker, errors, and kills behave as in a worker greenthread; nothing is left
behind. A worker greenlet nothing remembers runs the next worker; one that
anything could tell from a new greenlet does not.
"""

import contextvars
import gc
from http.client import HTTPConnection
import threading

import pytest
from greenlet import GreenletExit
import requests

from nameko_like._eventlet import eventlet
from nameko_like.web.handlers import http
from nameko_like.worker_greenlet import IdleWorkerGreenlets, WorkerGreenlet, run_in_child_greenlet

_local = threading.local()
_var = contextvars.ContextVar("_var", default="empty")
_remembered = []


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

    @http("GET", "/greenlet")
    def greenlet(self, request):
        return str(id(eventlet.getcurrent()))

    @http("GET", "/contextvar")
    def contextvar(self, request):
        previous = _var.get()
        _var.set("set by an earlier request")
        return previous

    @http("GET", "/greenlet-attribute")
    def greenlet_attribute(self, request):
        current = eventlet.getcurrent()
        previous = getattr(current, "marker", "empty")
        current.marker = "set by an earlier request"
        return previous

    @http("GET", "/remember")
    def remember(self, request):
        _remembered.append(eventlet.getcurrent())
        return str(id(_remembered[-1]))

    @http("GET", "/nap")
    def nap(self, request):
        eventlet.sleep(0.05)
        return str(id(eventlet.getcurrent()))

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


def _get_all(port, paths):
    """Bodies of GET ``paths``, one after another on one keep-alive connection."""
    conn = HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        bodies = []
        for path in paths:
            conn.request("GET", path)
            response = conn.getresponse()
            assert response.status == 200
            bodies.append(response.read().decode())
        return bodies
    finally:
        conn.close()


def test_a_worker_greenlet_nothing_remembers_runs_the_next_worker(
    container_factory, web_config, web_config_port
):
    container = container_factory(Service, web_config)
    container.start()
    first, second, third = _get_all(web_config_port, ["/greenlet"] * 3)
    assert first == second == third


@pytest.mark.parametrize("path", ["/local", "/local-after-sleep", "/contextvar",
                                  "/greenlet-attribute"])
def test_state_a_worker_left_on_its_greenlet_is_not_seen_by_the_next(
    container_factory, web_config, web_config_port, path
):
    container = container_factory(Service, web_config)
    container.start()
    assert _get_all(web_config_port, [path] * 3) == ["empty"] * 3


def test_a_worker_greenlet_someone_remembers_is_not_reused(
    container_factory, web_config, web_config_port
):
    container = container_factory(Service, web_config)
    container.start()
    remembered, after = _get_all(web_config_port, ["/remember", "/greenlet"])
    assert remembered != after
    _remembered.clear()


def test_idle_worker_greenlets_are_at_most_max_workers_and_go_with_the_container(
    container_factory, web_config, web_config_port
):
    container = container_factory(Service, dict(web_config, max_workers=3))
    container.start()
    url = f"http://127.0.0.1:{web_config_port}/nap"
    pool = eventlet.GreenPool(10)
    greenlets = {response.text for response in pool.imap(
        lambda _: requests.get(url, timeout=5), range(10))}
    assert len(container._idle_worker_greenlets) == 3
    assert 3 <= len(greenlets) < 10  # three at a time, some run more than one worker
    container.stop()
    assert len(container._idle_worker_greenlets) == 0
    assert _live_worker_greenlets() == []


def test_killing_an_idle_worker_greenlet_leaves_its_last_caller_alone():
    idle = IdleWorkerGreenlets(1)
    results = []

    def caller():
        run_in_child_greenlet({}, "worker", lambda: None, idle=idle)
        # waiting, as a connection's greenthread waits for its next request
        results.append(eventlet.sleep(0.2) or "woke on time")

    thread = eventlet.spawn(caller)
    eventlet.sleep(0.05)
    assert len(idle) == 1
    eventlet.kill(idle._idle[0])
    thread.wait()
    assert results == ["woke on time"]
    assert idle.take() is None
