"""``async def`` methods behind every built-in entrypoint, on the real broker.

This tier runs on eventlet's asyncio hub: ``EVENTLET_HUB=asyncio pytest
test/async_entrypoints`` (scripts/test runs it so after the whole suite; tox
env ``asyncio-hub`` runs everything on that hub). On the default hub only
the refusal test runs.
"""

import asyncio
import json
import logging
import time

import pytest
from kombu import Connection, Exchange, Queue

from nameko_like._eventlet import eventlet
from nameko_like.asyncio_support import (
    AsyncGeneratorMethod,
    AsyncioHubRequired,
    in_greenthread,
    is_asyncio_hub,
)
from nameko_like.contextdata import Language
from nameko_like.events import EventDispatcher, event_handler
from nameko_like.exceptions import IncorrectSignature, RemoteError
from nameko_like.extensions import DependencyProvider
from nameko_like.logging_json import JsonFormatter
from nameko_like.messaging import consume
from nameko_like.rpc import RpcProxy, rpc
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.services import entrypoint_hook, entrypoint_waiter
from nameko_like.timer import timer
from nameko_like.web.handlers import http
from nameko_like.web.websocket import WebSocketHubProvider
from nameko_like.web.websocket import rpc as ws_rpc

ON_ASYNCIO_HUB = is_asyncio_hub()
asyncio_hub = pytest.mark.skipif(
    not ON_ASYNCIO_HUB, reason="needs eventlet's asyncio hub (EVENTLET_HUB=asyncio)")
pytestmark = pytest.mark.integration

TASKS = Exchange("async_tasks", type="topic")
TASK_QUEUE = Queue("async_tasks", TASKS, routing_key="task.#")


def on_hub_loop():
    """Whether the calling code runs as an asyncio task on the hub's loop."""
    loop = asyncio.get_running_loop()
    return loop is eventlet.hubs.get_hub().loop and asyncio.current_task() is not None


class Tracker(DependencyProvider):
    """Records the worker life cycle; offers a distinct async variant."""

    def setup(self):
        self.events = []

    def get_dependency(self, worker_ctx):
        return ("sync", worker_ctx.entrypoint.method_name)

    def get_async_dependency(self, worker_ctx):
        return ("async", worker_ctx.entrypoint.method_name)

    def worker_setup(self, worker_ctx):
        self.events.append(("setup", worker_ctx.entrypoint.method_name))

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        error = None if exc_info is None else type(exc_info[1]).__name__
        self.events.append(("result", worker_ctx.entrypoint.method_name, result, error))

    def worker_teardown(self, worker_ctx):
        self.events.append(("teardown", worker_ctx.entrypoint.method_name))


class Helper:
    name = "async_helper"
    language = Language()

    @rpc
    def double(self, value):
        return {"value": value * 2, "language": self.language}

    @rpc
    async def slow_double(self, value):
        await asyncio.sleep(0.01)
        return value * 2


class AsyncService:
    name = "async_service"
    helper = RpcProxy("async_helper")
    dispatch = EventDispatcher()
    tracker = Tracker()
    language = Language()
    seen = []
    running = {"now": 0, "most": 0}
    cancelled = []
    hub = WebSocketHubProvider()

    @rpc
    async def add(self, a, b):
        await asyncio.sleep(0)
        return {"sum": a + b, "on_loop": on_hub_loop(), "tracker": self.tracker,
                "language": self.language}

    @rpc
    def add_sync(self, a, b):
        return {"sum": a + b, "tracker": self.tracker, "helper": self.helper.double(a)}

    @rpc(expected_exceptions=KeyError)
    async def fail(self, kind):
        await asyncio.sleep(0)
        if kind == "expected":
            raise KeyError("missing")
        if kind == "cancelled":
            # a task cancelled under the method: CancelledError escapes it
            inner = asyncio.ensure_future(asyncio.sleep(10))
            inner.cancel()
            await inner
        raise ValueError("broken")

    @rpc
    async def call_helper(self, value):
        # both helper methods, concurrently, through the awaitable proxy
        double, slow = await asyncio.gather(self.helper.double(value),
                                            self.helper.slow_double(value))
        return {"double": double, "slow": slow}

    @rpc
    async def announce(self, text):
        await self.dispatch("announced", {"text": text})
        return "sent"

    @rpc
    async def hold(self, seconds):
        running = self.running
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            self.cancelled.append(seconds)
            raise
        finally:
            running["now"] -= 1
        return seconds

    @rpc
    async def blocking_call(self, seconds):
        # eventlet-blocking code from a coroutine: through a greenthread
        return await in_greenthread(lambda: eventlet.sleep(seconds) or "slept")

    @event_handler("async_service", "announced")
    async def on_announced(self, payload):
        await asyncio.sleep(0)
        self.seen.append(("event", payload["text"], on_hub_loop()))

    @consume(TASK_QUEUE, requeue_on_error=True)
    async def on_task(self, payload):
        await asyncio.sleep(0)
        self.seen.append(("task", payload, on_hub_loop()))
        if payload == "fail-once" and ("task", payload, True) not in self.seen[:-1]:
            raise RuntimeError("fail once, then succeed on redelivery")
        return payload

    @http("GET", "/add/<int:a>/<int:b>")
    async def http_add(self, request, a, b):
        await asyncio.sleep(0)
        return json.dumps({"sum": a + b, "on_loop": on_hub_loop()})

    @http("GET", "/broken")
    async def http_broken(self, request):
        await asyncio.sleep(0)
        raise ValueError("broken page")

    @http("POST", "/upload")
    async def http_upload(self, request):
        # the body was read before the worker ran: nothing blocks on the socket here
        body = request.get_data()
        await asyncio.sleep(0)
        return str(len(body))

    @http("GET", "/sync")
    def http_sync(self, request):
        return "sync page"

    @ws_rpc
    async def ws_subscribe(self, socket_id, channel):
        # the hub only queues frames: usable as it is from a coroutine
        self.hub.subscribe(socket_id, channel)
        return sorted(self.hub.get_subscriptions(socket_id))

    @http("POST", "/say/<channel>")
    async def say(self, request, channel):
        await asyncio.sleep(0)
        self.hub.broadcast(channel, "said", request.get_data(as_text=True))
        return "sent"

    @ws_rpc
    async def ws_echo(self, socket_id, value):
        await asyncio.sleep(0)
        return {"value": value, "on_loop": on_hub_loop()}


class Ticker:
    name = "async_ticker"
    ticks = []

    @timer(interval=0.05)
    async def tick(self):
        await asyncio.sleep(0)
        self.ticks.append(on_hub_loop())


@pytest.fixture
def config(rabbit_config, web_config):
    return {**rabbit_config, **web_config}


@pytest.fixture
def services(container_factory, config):
    AsyncService.seen.clear()
    AsyncService.cancelled.clear()
    AsyncService.running.update(now=0, most=0)
    helper = container_factory(Helper, config)
    helper.start()
    container = container_factory(AsyncService, config)
    container.start()
    return container


@asyncio_hub
def test_rpc_runs_on_the_loop_with_context_data_and_awaitable_dependencies(services, config):
    with ClusterRpcProxy(config, context_data={"language": "fr"}, timeout=10) as cluster:
        assert cluster.async_service.add(1, 2) == {
            "sum": 3, "on_loop": True, "tracker": ["async", "add"], "language": "fr"}
        # a sync method of the same service gets the sync dependencies
        assert cluster.async_service.add_sync(2, 3) == {
            "sum": 5, "tracker": ["sync", "add_sync"],
            "helper": {"value": 4, "language": "fr"}}
        # awaiting the RpcProxy carries the context data on
        assert cluster.async_service.call_helper(5) == {
            "double": {"value": 10, "language": "fr"}, "slow": 10}


@asyncio_hub
def test_worker_life_cycle_is_the_sync_one(services):
    tracker = next(ext for ext in services.dependencies if isinstance(ext, Tracker))
    with entrypoint_hook(services, "add") as add:
        add(1, 1)
    with entrypoint_hook(services, "fail") as fail, pytest.raises(ValueError):
        fail("unexpected")
    result = {"sum": 2, "on_loop": True, "tracker": ("async", "add"), "language": None}
    assert tracker.events == [
        ("setup", "add"), ("result", "add", result, None), ("teardown", "add"),
        ("setup", "fail"), ("result", "fail", None, "ValueError"), ("teardown", "fail"),
    ]


@asyncio_hub
def test_errors_are_the_sync_errors(services, config):
    with ClusterRpcProxy(config, timeout=10) as cluster:
        with pytest.raises(RemoteError) as expected:
            cluster.async_service.fail("expected")
        with pytest.raises(RemoteError) as unexpected:
            cluster.async_service.fail("other")
        with pytest.raises(IncorrectSignature):
            cluster.async_service.add(1)
        # a CancelledError (a BaseException) is still an error reply
        with pytest.raises(RemoteError) as cancelled:
            cluster.async_service.fail("cancelled")
        # the service keeps serving
        assert cluster.async_service.add(2, 2)["sum"] == 4
    assert expected.value.exc_type == "KeyError"
    assert unexpected.value.exc_type == "ValueError"
    assert cancelled.value.exc_type == "WorkerCancelled"


@asyncio_hub
def test_max_workers_bounds_async_workers(container_factory, config):
    AsyncService.running.update(now=0, most=0)
    # (config: AsyncService serves @http too, on a free port)
    container = container_factory(AsyncService, {**config, "max_workers": 2})
    container.start()
    with ClusterRpcProxy(config, timeout=10) as cluster:
        replies = [cluster.async_service.hold.call_async(0.05) for _ in range(6)]
        assert [reply.result() for reply in replies] == [0.05] * 6
    assert AsyncService.running["most"] == 2


@asyncio_hub
def test_kill_cancels_the_coroutine(services, config):
    with ClusterRpcProxy(config, timeout=10) as cluster:
        cluster.async_service.hold.call_async(30)
        deadline = time.monotonic() + 10
        while AsyncService.running["now"] == 0 and time.monotonic() < deadline:
            eventlet.sleep(0.01)
        services.kill()
    assert AsyncService.cancelled == [30]
    assert AsyncService.running["now"] == 0


@asyncio_hub
def test_eventlet_blocking_code_through_a_greenthread(services):
    with entrypoint_hook(services, "blocking_call") as blocking_call:
        assert blocking_call(0.01) == "slept"


@asyncio_hub
def test_event_handler_and_awaitable_dispatch(services, config):
    with entrypoint_waiter(services, "on_announced"):
        with ClusterRpcProxy(config, timeout=10) as cluster:
            assert cluster.async_service.announce("from rpc") == "sent"
    with entrypoint_waiter(services, "on_announced"):
        event_dispatcher(config)("async_service", "announced", {"text": "standalone"})
    assert AsyncService.seen == [("event", "from rpc", True), ("event", "standalone", True)]


@asyncio_hub
def test_consume_acks_and_requeues_on_error_as_sync_handlers_do(services, config):
    def publish(payload):
        with Connection(config["AMQP_URI"]) as connection:
            connection.Producer().publish(payload, exchange=TASKS, routing_key="task.x",
                                          serializer="json", declare=[TASK_QUEUE])

    with entrypoint_waiter(services, "on_task"):
        publish("plain")
    with entrypoint_waiter(services, "on_task", callback=lambda ctx, result, exc: result):
        publish("fail-once")
    assert AsyncService.seen == [
        ("task", "plain", True), ("task", "fail-once", True), ("task", "fail-once", True)]


@asyncio_hub
def test_http(services, web_session):
    response = web_session.get("/add/2/3")
    assert response.status_code == 200
    assert response.json() == {"sum": 5, "on_loop": True}
    broken = web_session.get("/broken")
    assert broken.status_code == 500
    assert "broken page" in broken.text
    assert web_session.get("/sync").text == "sync page"
    assert web_session.post("/upload", data=b"x" * 300_000).text == "300000"


@asyncio_hub
def test_websocket_rpc(services, websocket):
    client = websocket()
    assert client.rpc("ws_echo", value=[1, 2]) == {"value": [1, 2], "on_loop": True}


@asyncio_hub
def test_websocket_hub_from_async_methods(services, websocket, web_session):
    client = websocket()
    assert client.rpc("ws_subscribe", channel="news") == ["news"]
    assert web_session.post("/say/news", data="hello").text == "sent"
    assert client.wait_for_event("said") == ("said", "hello")


@asyncio_hub
def test_timer(container_factory, rabbit_config):
    Ticker.ticks.clear()
    container = container_factory(Ticker, rabbit_config)
    container.start()
    deadline = time.monotonic() + 10
    while len(Ticker.ticks) < 2 and time.monotonic() < deadline:
        eventlet.sleep(0.02)
    assert Ticker.ticks[:2] == [True, True]


@pytest.mark.skipif(ON_ASYNCIO_HUB, reason="the refusal is for the default hub")
def test_refused_on_the_default_hub_naming_the_switch(container_factory, rabbit_config):
    container = container_factory(Ticker, rabbit_config)
    with pytest.raises(AsyncioHubRequired) as refused:
        container.start()
    message = str(refused.value)
    assert "EVENTLET_HUB=asyncio" in message
    assert "'async_ticker'" in message and "tick" in message
    with pytest.raises(AsyncioHubRequired, match="EVENTLET_HUB=asyncio"):
        in_greenthread(print)


app_log = logging.getLogger("test.async_entrypoints.app")


class Logged:
    name = "async_logged"
    helper = RpcProxy("async_helper")

    @rpc
    async def relay(self, value):
        app_log.warning("relaying %s", value)
        return await self.helper.double(value)


class JsonLines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


@asyncio_hub
def test_json_logs_and_call_id_stack_see_the_worker(container_factory, rabbit_config):
    handler = JsonLines()
    app_log.addHandler(handler)
    try:
        container_factory(Helper, rabbit_config).start()
        container_factory(Logged, rabbit_config).start()
        with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
            assert cluster.async_logged.relay(4)["value"] == 8
    finally:
        app_log.removeHandler(handler)
    (line,) = handler.lines
    assert line["service"] == "async_logged"
    assert line["entrypoint"] == "relay"
    assert line["call_id"].startswith("async_logged.relay.")


class Streamer:
    name = "async_streamer"

    @rpc
    async def numbers(self):
        yield 1


def test_async_generators_are_refused_on_any_hub(container_factory, rabbit_config):
    container = container_factory(Streamer, rabbit_config)
    with pytest.raises(AsyncGeneratorMethod, match="numbers are async generators"):
        container.start()
