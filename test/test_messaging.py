"""``@consume`` and the ``Publisher`` dependency with exchanges and queues of
one's own, and the publisher options.

End-to-end behaviour runs on both backends; what a message looks like on
the broker, and options only a broker acts on (confirms, mandatory returns,
priorities, expiry), are checked against RabbitMQ.
"""

import base64
import json
import re
import time
import zlib

import pytest
from kombu import Exchange, Queue

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import UndeliverableMessage
from nameko_like.extensions import DependencyProvider
from nameko_like.messaging import Publisher, consume
from nameko_like.testing.services import dummy, entrypoint_hook

TASKS = Exchange("tasks", type="topic", durable=True)
TASK_QUEUE = Queue("task-queue", exchange=TASKS, routing_key="task.*", durable=True)
#: bound but never consumed: messages stay there for the test to look at
HOLD_QUEUE = Queue("hold-queue", exchange=TASKS, routing_key="hold.*", durable=True)
PRIORITY_QUEUE = Queue("priority-queue", exchange=TASKS, routing_key="prio.*", durable=True,
                       queue_arguments={"x-max-priority": 10})
PLAIN_QUEUE = Queue("plain-queue", durable=True)

received = []


@pytest.fixture(autouse=True)
def clear_received():
    received.clear()


def wait_for_received(count, timeout=5.0):
    deadline = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        eventlet.sleep(0.01)
    return list(received)


class WorkerCtx(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return worker_ctx


class Producer:
    name = "producer"
    publish = Publisher(exchange=TASKS, declare=[HOLD_QUEUE, PRIORITY_QUEUE])
    publish_mandatory = Publisher(exchange=TASKS, declare=[HOLD_QUEUE], mandatory=True)
    publish_unconfirmed = Publisher(exchange=TASKS, declare=[HOLD_QUEUE], mandatory=True,
                                    use_confirms=False)
    publish_transient = Publisher(exchange=TASKS, declare=[HOLD_QUEUE], delivery_mode=1,
                                  priority=3, expiration=60)
    publish_zipped = Publisher(exchange=TASKS, declare=[HOLD_QUEUE], compression="zlib")
    publish_yaml = Publisher(exchange=TASKS, declare=[HOLD_QUEUE], serializer="yaml")
    publish_plain = Publisher(queue=PLAIN_QUEUE)

    @dummy
    def send(self, publisher, payload, **options):
        getattr(self, publisher)(payload, **options)


class Worker:
    name = "worker"
    ctx = WorkerCtx()

    @consume(TASK_QUEUE)
    def handle(self, payload):
        received.append((payload, self.ctx.context_data))

    @consume(PLAIN_QUEUE)
    def handle_plain(self, payload):
        received.append((payload, self.ctx.context_data))


@pytest.fixture
def producer(container_factory, backend):
    container = container_factory(Producer, dict(backend))
    container.start()
    return container


@pytest.fixture
def send(producer):
    def send(publisher, payload, context_data=None, **options):
        with entrypoint_hook(producer, "send", context_data=context_data) as hook:
            hook(publisher, payload, **options)
    return send


@pytest.fixture
def worker(container_factory, backend):
    container = container_factory(Worker, dict(backend, ACCEPT=["json", "yaml"]))
    container.start()
    return container


# --- end to end, both backends ---------------------------------------------------------


def test_publisher_to_consumer_through_a_custom_exchange(worker, send):
    context = {"language": "pt", "foo": "bar"}
    send("publish", {"task": 1}, routing_key="task.new", context_data=context)
    [(payload, data)] = wait_for_received(1)
    assert payload == {"task": 1}
    assert data["language"] == "pt"
    assert data["foo"] == "bar"
    # the consuming worker's stack: the publishing worker, then its own
    assert [call_id.rsplit(".", 1)[0] for call_id in data["call_id_stack"]] == [
        "producer.send", "worker.handle"]


def test_publisher_to_a_queue_on_the_default_exchange(worker, send):
    send("publish_plain", "to the queue itself")
    [(payload, _)] = wait_for_received(1)
    assert payload == "to the queue itself"


def test_messages_are_consumed_in_order(worker, send):
    for number in range(20):
        send("publish", number, routing_key="task.n")
    assert [payload for payload, _ in wait_for_received(20)] == list(range(20))


@pytest.mark.parametrize("publisher", ["publish_zipped", "publish_yaml", "publish_transient"])
def test_publisher_options_round_trip(worker, send, publisher):
    payload = {"text": "x" * 500, "items": [1, 2.5, None, True]}
    send(publisher, payload, routing_key="task.opt")
    [(got, _)] = wait_for_received(1)
    assert got == payload


# --- on the broker ---------------------------------------------------------------------------


@pytest.fixture
def rabbit_send(container_factory, rabbit_config):
    container = container_factory(Producer, dict(rabbit_config))
    container.start()

    def send(publisher, payload, **options):
        with entrypoint_hook(container, "send") as hook:
            hook(publisher, payload, **options)
    return send


@pytest.mark.integration
def test_default_message_properties(rabbit_send, management):
    rabbit_send("publish", {"a": 1}, routing_key="hold.default", headers={"x-custom": "yes"})
    [message] = management.peek("hold-queue")
    properties = message["properties"]
    assert json.loads(message["payload"]) == {"a": 1}
    assert properties["content_type"] == "application/json"
    assert properties["delivery_mode"] == 2
    assert "priority" not in properties and "expiration" not in properties
    assert properties["headers"]["x-custom"] == "yes"
    assert properties["headers"]["nameko.call_id_stack"][0].startswith("producer.send.")


@pytest.mark.integration
def test_configured_options_and_per_call_overrides(rabbit_send, management):
    rabbit_send("publish_transient", "configured", routing_key="hold.a")
    rabbit_send("publish_transient", "overridden", routing_key="hold.b",
                delivery_mode=2, priority=7)
    configured, overridden = management.peek("hold-queue")
    assert configured["properties"]["delivery_mode"] == 1
    assert configured["properties"]["priority"] == 3
    assert configured["properties"]["expiration"] == "60000"
    assert overridden["properties"]["delivery_mode"] == 2
    assert overridden["properties"]["priority"] == 7


@pytest.mark.integration
def test_compression_and_serializer_on_the_wire(rabbit_send, management):
    rabbit_send("publish_zipped", {"z": "z" * 100}, routing_key="hold.z")
    rabbit_send("publish_yaml", {"y": [1, 2]}, routing_key="hold.y")
    zipped, yamled = management.peek("hold-queue")
    assert zipped["properties"]["headers"]["compression"] == "application/x-gzip"
    assert zipped["payload_encoding"] == "base64"
    assert json.loads(zlib.decompress(base64.b64decode(zipped["payload"]))) == {"z": "z" * 100}
    assert yamled["properties"]["content_type"] == "application/x-yaml"
    assert "y:" in yamled["payload"]


@pytest.mark.integration
def test_priority_is_honoured_by_a_priority_queue(rabbit_send, rabbit_config, take_messages):
    for priority in (1, 9, 5):
        rabbit_send("publish", priority, routing_key="prio.x", priority=priority)
    messages = take_messages(rabbit_config, "priority-queue", count=3)
    assert [message.decode() for message in messages] == [9, 5, 1]


@pytest.mark.integration
def test_expired_messages_leave_the_queue(rabbit_send, management):
    rabbit_send("publish", "short-lived", routing_key="hold.x", expiration=0.1)
    rabbit_send("publish", "long-lived", routing_key="hold.x")
    eventlet.sleep(0.4)
    assert [json.loads(m["payload"]) for m in management.peek("hold-queue")] == ["long-lived"]


@pytest.mark.integration
def test_mandatory_publish_of_an_unroutable_message_raises(rabbit_send, management):
    with pytest.raises(UndeliverableMessage, match=re.escape("nowhere.at.all")):
        rabbit_send("publish_mandatory", "lost", routing_key="nowhere.at.all")
    rabbit_send("publish_mandatory", "kept", routing_key="hold.m")
    assert [json.loads(m["payload"]) for m in management.peek("hold-queue")] == ["kept"]


@pytest.mark.integration
def test_without_confirms_publish_does_not_wait_for_the_broker(rabbit_send, management):
    # nothing waits for the broker's verdict, so an unroutable mandatory
    # message is not reported; routable ones are still delivered
    rabbit_send("publish_unconfirmed", "lost quietly", routing_key="nowhere.at.all")
    rabbit_send("publish_unconfirmed", "delivered", routing_key="hold.u")
    assert [json.loads(m["payload"]) for m in management.wait_for(
        lambda: management.peek("hold-queue"), timeout=5)] == ["delivered"]


def test_every_header_is_context_data_as_in_nameko_except_transport_bookkeeping():
    from nameko_like.messaging import decode_context_headers

    headers = {"nameko.language": "fr", "nameko.call_id_stack": ["a.b.1"],
               "x-trace-id": "t-1", "plain": 3,
               "x-redelivery-count": 2, "x-original-exchange": "src.events",
               "x-original-routing-key": "created", "x-dead-letter-reason": "why",
               "compression": "application/x-gzip", "x-delivery-count": 1,
               "x-death": [{"count": 1}]}
    assert decode_context_headers(headers) == {
        "language": "fr", "call_id_stack": ["a.b.1"], "x-trace-id": "t-1", "plain": 3}
