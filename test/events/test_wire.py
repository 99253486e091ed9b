"""Events on the wire, as RabbitMQ's management API sees them: the queue and
exchange names the ``nameko_like.events`` docstring promises, and the
exchange config keys."""

import json
import time

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.events import BROADCAST, SINGLETON, EventHandler, event_handler
from nameko_like.exceptions import DeliveryError
from nameko_like.standalone.events import event_dispatcher

pytestmark = pytest.mark.integration

handled = []


@pytest.fixture(autouse=True)
def clear_handled():
    handled.clear()


class NodeHandler(EventHandler):
    broadcast_identifier = "node-7"


class Handlers:
    name = "handlers"

    @event_handler("orders", "placed")
    def pooled(self, payload):
        handled.append(("pooled", payload))

    @event_handler("orders", "placed", handler_type=SINGLETON)
    def single(self, payload):
        handled.append(("single", payload))

    @NodeHandler.decorator("orders", "placed", handler_type=BROADCAST)
    def broadcast(self, payload):
        handled.append(("broadcast", payload))

    @event_handler("orders", "cancelled", reliable_delivery=False)
    def unreliable(self, payload):
        handled.append(("unreliable", payload))


def test_queue_and_exchange_names_and_flags(container_factory, rabbit_config, management):
    container_factory(Handlers, dict(rabbit_config)).start()

    expected = {
        "evt-orders-placed--handlers.pooled": ("placed", True, False),
        "evt-orders-placed": ("placed", True, False),
        "evt-orders-placed--handlers.broadcast-node-7": ("placed", True, False),
        "evt-orders-cancelled--handlers.unreliable": ("cancelled", True, True),
    }
    assert {name for name in management.queue_names() if name.startswith("evt-")} == set(expected)
    for name, (routing_key, durable, auto_delete) in expected.items():
        queue = management.queue(name)
        assert (queue["durable"], queue["auto_delete"]) == (durable, auto_delete), name
        assert management.bindings(name) == [("orders.events", routing_key)], name
    exchange = management.exchange("orders.events")
    # not auto-delete unless AUTO_DELETE_EVENT_EXCHANGES says so, as in Nameko 2.x
    assert (exchange["type"], exchange["durable"], exchange["auto_delete"]) == (
        "topic", True, False)


def test_default_broadcast_identifier_makes_a_queue_per_instance(
        container_factory, rabbit_config, management):
    class Broadcaster:
        name = "broadcaster"

        @event_handler("orders", "placed", handler_type=BROADCAST, reliable_delivery=False)
        def hear(self, payload):
            pass

    container_factory(Broadcaster, dict(rabbit_config)).start()
    container_factory(Broadcaster, dict(rabbit_config)).start()
    names = sorted(name for name in management.queue_names() if name.startswith("evt-"))
    assert len(names) == 2
    prefix = "evt-orders-placed--broadcaster.hear-"
    assert all(name.startswith(prefix) and len(name) > len(prefix) for name in names)
    assert all(management.queue(name)["auto_delete"] for name in names)


def test_event_message_shape(container_factory, rabbit_config, management):
    container = container_factory(Handlers, dict(rabbit_config))
    container.start()
    container.stop()  # the durable queues stay and fill up

    dispatch = event_dispatcher(rabbit_config, context_data={"language": "it", "foo": "bar"})
    dispatch("orders", "placed", {"order": 1})
    [message] = management.wait_for(lambda: management.peek("evt-orders-placed--handlers.pooled"))
    assert json.loads(message["payload"]) == {"order": 1}
    assert message["exchange"] == "orders.events"
    assert message["routing_key"] == "placed"
    properties = message["properties"]
    assert properties["content_type"] == "application/json"
    assert properties["delivery_mode"] == 2
    assert properties["headers"] == {"nameko.language": "it", "nameko.foo": "bar"}


def test_unreliable_handler_misses_events_dispatched_while_down(
        container_factory, rabbit_config, management):
    first = container_factory(Handlers, dict(rabbit_config))
    first.start()
    first.stop()
    # its auto-delete queue went with its consumer ...
    name = "evt-orders-cancelled--handlers.unreliable"
    management.wait_for(lambda: name not in management.queue_names(), timeout=5)
    dispatch = event_dispatcher(rabbit_config)
    dispatch("orders", "cancelled", "while down")
    # ... so the event is gone, while the reliable handlers get theirs
    dispatch("orders", "placed", "kept")
    container_factory(Handlers, dict(rabbit_config)).start()
    dispatch("orders", "cancelled", "while up")

    deadline = time.monotonic() + 5
    while len(handled) < 4 and time.monotonic() < deadline:
        eventlet.sleep(0.01)
    eventlet.sleep(0.3)
    assert sorted(handled) == sorted([
        ("pooled", "kept"), ("single", "kept"), ("broadcast", "kept"), ("unreliable", "while up"),
    ])


@pytest.mark.parametrize("setting", [True, False])
def test_auto_delete_event_exchanges(container_factory, rabbit_config, management, setting):
    config = dict(rabbit_config, AUTO_DELETE_EVENT_EXCHANGES=setting)
    container_factory(Handlers, config).start()
    event_dispatcher(config)("orders", "placed", "x")  # declares it the same way
    assert management.exchange("orders.events")["auto_delete"] is setting


def test_declare_event_exchanges_false(container_factory, rabbit_config, management):
    config = dict(rabbit_config, DECLARE_EVENT_EXCHANGES=False)
    dispatch = event_dispatcher(config)
    with pytest.raises(DeliveryError, match=r"no exchange 'ghost\.events'"):
        dispatch("ghost", "spooked", "boo")
    assert management.exchange("ghost.events") is None

    # once a handler declared the exchange, dispatching without declaring works
    container_factory(Handlers, dict(rabbit_config)).start()
    dispatch("orders", "placed", "declared by the handler")
    deadline = time.monotonic() + 5
    while len(handled) < 3 and time.monotonic() < deadline:
        eventlet.sleep(0.01)
    assert sorted(kind for kind, _ in handled) == ["broadcast", "pooled", "single"]


def test_declare_event_exchanges_default_declares(rabbit_config, management):
    event_dispatcher(rabbit_config)("ghost", "spooked", "boo")
    exchange = management.exchange("ghost.events")
    assert (exchange["type"], exchange["durable"]) == ("topic", True)
