"""Events end to end, written once and run on RabbitMQ and on ``memory://``:
dispatching, the three handler types, and reliable delivery."""

import time

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.events import (
    BROADCAST,
    SINGLETON,
    EventDispatcher,
    EventHandler,
    EventHandlerConfigurationError,
    event_handler,
)
from nameko_like.extensions import DependencyProvider
from nameko_like.standalone.events import event_dispatcher
from nameko_like.testing.services import dummy, entrypoint_hook, entrypoint_waiter


class WorkerCtx(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return worker_ctx


#: (container, handler method name, payload) of every handled event
handled = []


@pytest.fixture(autouse=True)
def clear_handled():
    handled.clear()


def wait_for_handled(count, timeout=5.0, settle=0.3):
    """Wait until ``count`` events were handled, then a little more for extras."""
    deadline = time.monotonic() + timeout
    while len(handled) < count and time.monotonic() < deadline:
        eventlet.sleep(0.01)
    eventlet.sleep(settle)  # a duplicate would show up now
    return list(handled)


class Source:
    name = "source"
    dispatch = EventDispatcher()

    @dummy
    def emit(self, event_type, payload):
        self.dispatch(event_type, payload)


class Listener:
    name = "listener"
    ctx = WorkerCtx()

    @event_handler("source", "created")
    def on_created(self, payload):
        handled.append((self.ctx.container, "on_created", payload))
        return {"payload": payload, "data": self.ctx.data, "call_id_stack": self.ctx.call_id_stack}


class OtherListener:
    name = "other_listener"
    ctx = WorkerCtx()

    @event_handler("source", "created", handler_type=SINGLETON)
    def on_created(self, payload):
        handled.append((self.ctx.container, "on_created", payload))


class SingletonListener:
    name = "singleton_listener"
    ctx = WorkerCtx()

    @event_handler("source", "created", handler_type=SINGLETON)
    def on_created(self, payload):
        handled.append((self.ctx.container, "on_created", payload))


class BroadcastListener:
    name = "broadcast_listener"
    ctx = WorkerCtx()

    @event_handler("source", "created", handler_type=BROADCAST, reliable_delivery=False)
    def on_created(self, payload):
        handled.append((self.ctx.container, "on_created", payload))


@pytest.fixture
def start(container_factory, backend):
    def start(service, **config):
        container = container_factory(service, dict(backend, **config))
        container.start()
        return container
    return start


def dispatch_many(config, count, event_type="created"):
    dispatch = event_dispatcher(config)
    for number in range(count):
        dispatch("source", event_type, number)


# --- dispatching ----------------------------------------------------------------


def test_event_from_a_service_reaches_the_handler_with_context_data(start):
    source = start(Source)
    listener = start(Listener)
    context = {"language": "nl", "user_id": 9, "foo": "bar"}

    with entrypoint_waiter(listener, "on_created", timeout=5) as result:
        with entrypoint_hook(source, "emit", context_data=context) as emit:
            emit("created", {"id": 1})

    outcome = result.get()
    assert outcome["payload"] == {"id": 1}
    assert outcome["data"]["language"] == "nl"
    assert outcome["data"]["user_id"] == 9
    assert outcome["data"]["foo"] == "bar"
    stack = outcome["call_id_stack"]
    assert [call_id.rsplit(".", 1)[0] for call_id in stack] == [
        "source.emit", "listener.on_created"]


def test_standalone_dispatcher_sync_and_async(start, backend):
    listener = start(Listener)
    dispatch = event_dispatcher(backend, context_data={"user_id": "standalone"})

    with entrypoint_waiter(listener, "on_created", timeout=5) as result:
        dispatch("source", "created", "sync")
    assert result.get()["payload"] == "sync"
    assert result.get()["data"]["user_id"] == "standalone"

    outcomes = [dispatch.dispatch_async("source", "created", n) for n in range(20)]
    for outcome in outcomes:
        dispatch.wait(outcome, timeout=5)
    got = wait_for_handled(21)
    assert sorted(payload for _, _, payload in got[1:]) == list(range(20))


def test_events_of_other_types_are_not_handled(start, backend):
    start(Listener)
    dispatch = event_dispatcher(backend)
    dispatch("source", "deleted", "not for us")
    dispatch("elsewhere", "created", "not for us either")
    dispatch("source", "created", "for us")
    assert [payload for _, _, payload in wait_for_handled(1)] == ["for us"]


# --- handler types ---------------------------------------------------------------


def test_service_pool_handles_each_event_once_per_service(start, backend):
    first, second = start(Listener), start(Listener)
    dispatch_many(backend, 10)
    got = wait_for_handled(10)
    assert sorted(payload for _, _, payload in got) == list(range(10))
    assert {container for container, _, _ in got} <= {first, second}


def test_singleton_handles_each_event_once_in_the_cluster(start, backend):
    first, second = start(SingletonListener), start(OtherListener)
    dispatch_many(backend, 10)
    got = wait_for_handled(10)
    assert sorted(payload for _, _, payload in got) == list(range(10))
    assert {container for container, _, _ in got} <= {first, second}


def test_broadcast_reaches_every_instance(start, backend):
    first, second = start(BroadcastListener), start(BroadcastListener)
    dispatch_many(backend, 10)
    got = wait_for_handled(20)
    for container in (first, second):
        assert sorted(payload for c, _, payload in got if c is container) == list(range(10))
    assert len(got) == 20


class ReliableBroadcast:
    name = "reliable_broadcast"

    @event_handler("source", "created", handler_type=BROADCAST)
    def on_created(self, payload):
        handled.append((None, "on_created", payload))


def test_broadcast_with_reliable_delivery_needs_a_stable_identifier(container_factory, backend):
    # refused while the container is built, as in Nameko
    with pytest.raises(EventHandlerConfigurationError, match="broadcast_identifier"):
        container_factory(ReliableBroadcast, dict(backend))


class NodeHandler(EventHandler):
    broadcast_identifier = "node-1"


class StableBroadcast:
    name = "stable_broadcast"
    ctx = WorkerCtx()

    @NodeHandler.decorator("source", "created", handler_type=BROADCAST)
    def on_created(self, payload):
        handled.append((self.ctx.container, "on_created", payload))


def test_broadcast_with_a_stable_identifier_keeps_events_while_down(start, backend):
    first = start(StableBroadcast)
    first.stop()
    dispatch_many(backend, 3)
    start(StableBroadcast)
    assert sorted(payload for _, _, payload in wait_for_handled(3)) == [0, 1, 2]


# --- reliable delivery and errors -----------------------------------------------


def test_reliable_delivery_keeps_events_while_the_handler_is_down(start, backend):
    first = start(Listener)
    first.stop()
    dispatch_many(backend, 5)
    second = start(Listener)
    got = wait_for_handled(5)
    assert [payload for _, _, payload in got] == [0, 1, 2, 3, 4]
    assert {container for container, _, _ in got} == {second}


class Flaky:
    name = "flaky"
    attempts = []
    failures = 2

    @event_handler("source", "created", requeue_on_error=True)
    def on_created(self, payload):
        Flaky.attempts.append(payload)
        if len(Flaky.attempts) <= Flaky.failures:
            raise RuntimeError(f"attempt {len(Flaky.attempts)} fails")
        handled.append((None, "on_created", payload))


class Fragile:
    name = "fragile"
    attempts = []

    @event_handler("source", "created")
    def on_created(self, payload):
        Fragile.attempts.append(payload)
        raise RuntimeError("always")


@pytest.fixture
def flaky():
    Flaky.attempts = []
    Flaky.failures = 2
    return Flaky


def test_requeue_on_error_redelivers_until_the_handler_succeeds(start, backend, flaky):
    start(Flaky)
    event_dispatcher(backend)("source", "created", {"order": 7})
    got = wait_for_handled(1)
    assert [payload for _, _, payload in got] == [{"order": 7}]
    assert Flaky.attempts == [{"order": 7}] * 3


def test_requeue_on_error_ends_in_the_dead_letter_queue(start, backend, flaky, take_messages):
    Flaky.failures = 100
    start(Flaky, MAX_REDELIVERIES=2)
    event_dispatcher(backend)("source", "created", {"order": 8})

    [message] = take_messages(backend, "flaky.dead-letter", timeout=5)
    assert message.headers["x-dead-letter-reason"]
    assert "MAX_REDELIVERIES=2" in message.headers["x-dead-letter-reason"]
    # requeued twice through the default exchange, it still names its origin
    assert message.headers["x-original-exchange"] == "source.events"
    assert message.headers["x-original-routing-key"] == "created"
    assert message.content_type == "application/json"
    assert message.decode() == {"order": 8}
    eventlet.sleep(0.5)  # no hot loop: nothing more happens
    assert Flaky.attempts == [{"order": 8}] * 3
    assert handled == []


def test_without_requeue_on_error_a_failed_event_is_not_retried(start, backend, take_messages):
    Fragile.attempts = []
    container = start(Fragile)
    with entrypoint_waiter(container, "on_created", timeout=5):
        event_dispatcher(backend)("source", "created", "once")
    eventlet.sleep(0.3)
    assert Fragile.attempts == ["once"]
    assert take_messages(backend, "fragile.dead-letter", timeout=0.2) == []
