"""QUEUE_TYPE: quorum on the local RabbitMQ (a fresh vhost per test): what
is declared with which arguments, the broker's delivery limit and dead
letters, and the errors for a queue that exists with another type."""

import time

import pytest
from kombu import Connection, Exchange, Queue

from nameko_like.events import BROADCAST, event_handler
from nameko_like.exceptions import ConfigurationError
from nameko_like.rpc import RpcProxy, rpc
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.integration


class Quorate:
    name = "quorate"
    handled = []

    @rpc
    def echo(self, value):
        return value

    @event_handler("somewhere", "happened")
    def on_event(self, payload):
        Quorate.handled.append(payload)

    @event_handler("somewhere", "happened", handler_type=BROADCAST, reliable_delivery=False)
    def on_broadcast(self, payload):
        pass


class Caller:
    name = "quorate_caller"
    quorate = RpcProxy("quorate", timeout=10)

    @rpc
    def relay(self, value):
        return self.quorate.echo(value)


def queues_by_name(rabbit_manager, config):
    return {queue["name"]: queue for queue in rabbit_manager.get_queues(config["vhost"])}


def test_service_queues_are_quorum_and_reply_queues_transient(
        container_factory, rabbit_config, rabbit_manager):
    config = dict(rabbit_config, QUEUE_TYPE="quorum", MAX_REDELIVERIES=3)
    container_factory(Quorate, config).start()
    container_factory(Caller, config).start()
    Quorate.handled = []

    with ClusterRpcProxy(config, timeout=10) as cluster:
        assert cluster.quorate_caller.relay("hi") == "hi"
    event_dispatcher(config)("somewhere", "happened", {"n": 1})
    deadline = time.monotonic() + 10
    while not Quorate.handled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert Quorate.handled == [{"n": 1}]

    queues = queues_by_name(rabbit_manager, config)
    expected_arguments = {
        "x-queue-type": "quorum", "x-delivery-limit": 3, "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "quorate.dead-letter",
        "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
    }
    for name in ("rpc-quorate", "evt-somewhere-happened--quorate.on_event"):
        assert queues[name]["type"] == "quorum", name
        assert queues[name]["durable"] is True
        assert queues[name]["arguments"] == expected_arguments, name
    caller_arguments = queues["rpc-quorate_caller"]["arguments"]
    assert caller_arguments["x-dead-letter-routing-key"] == "quorate_caller.dead-letter"
    # declared up front: the broker dead-letters there from the first message on
    for name in ("quorate.dead-letter", "quorate_caller.dead-letter"):
        assert queues[name]["type"] == "quorum"
        assert queues[name]["arguments"] == {"x-queue-type": "quorum"}
    # what can't be a quorum queue stays classic, and goes with its node
    reply = [queue for name, queue in queues.items() if name.startswith("rpc.reply-")]
    assert len(reply) == 1 and reply[0]["type"] == "classic"
    assert reply[0]["durable"] is False and reply[0]["auto_delete"] is False
    broadcast = [queue for name, queue in queues.items() if ".on_broadcast-" in name]
    assert len(broadcast) == 1
    assert broadcast[0]["type"] == "classic" and broadcast[0]["durable"] is False
    assert broadcast[0]["exclusive"] is True


def test_classic_by_default(container_factory, rabbit_config, rabbit_manager):
    container_factory(Quorate, rabbit_config).start()
    queues = queues_by_name(rabbit_manager, rabbit_config)
    assert queues["rpc-quorate"]["type"] == "classic"
    assert queues["rpc-quorate"]["durable"] is True
    assert queues["rpc-quorate"]["arguments"] == {}
    assert "quorate.dead-letter" not in queues  # declared on first use, as before


def reject_back(config, queue_name, times):
    """Take the first message of ``queue_name`` and give it back ``times`` times."""
    counts = []
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.channel()
        for _ in range(times):
            deadline = time.monotonic() + 10
            message = None
            while message is None and time.monotonic() < deadline:
                message = channel.basic_get(queue_name)
                if message is None:
                    time.sleep(0.05)
            assert message is not None, f"nothing on {queue_name}"
            counts.append(message.headers.get("x-delivery-count", 0))
            channel.basic_reject(message.delivery_tag, requeue=True)
    return counts


def declare_quorum_queue(config, name, service):
    from nameko_like.amqp.queue_types import dead_letter_queue, owned_queue_options

    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.channel()
        dead_letter_queue(config, service)(channel).declare()
        Queue(name, exchange=Exchange("q_test", type="direct", durable=True),
              routing_key=name, **owned_queue_options(config, service))(channel).declare()
        connection.Producer(channel).publish({"n": 1}, exchange="q_test", routing_key=name,
                                             serializer="json", delivery_mode=2)


def test_broker_dead_letters_past_the_delivery_limit(rabbit_config, rabbit_manager):
    config = dict(rabbit_config, QUEUE_TYPE="quorum", MAX_REDELIVERIES=2)
    declare_quorum_queue(config, "limited", "limiter")

    # delivered 3 times (0, 1, 2 redeliveries), then the broker moves it aside
    assert reject_back(config, "limited", 3) == [0, 1, 2]
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.channel()
        deadline = time.monotonic() + 10
        dead = None
        while dead is None and time.monotonic() < deadline:
            dead = channel.basic_get("limiter.dead-letter", no_ack=True)
            time.sleep(0.05)
        assert channel.basic_get("limited") is None
    assert dead is not None
    death = dead.headers["x-death"][0]
    assert death["reason"] == "delivery_limit"
    assert death["queue"] == "limited"


def test_service_handles_a_message_at_the_limit(container_factory, rabbit_config):
    # Two deliveries given back elsewhere (another instance that lost its
    # connection, say): this process never saw them, the broker counted.
    # At the limit, it is still handled: the broker and the service agree
    # on where the limit lies.
    config = dict(rabbit_config, QUEUE_TYPE="quorum", MAX_REDELIVERIES=2)
    container = container_factory(Quorate, config)
    container.start()
    container.stop()
    with ClusterRpcProxy(config, timeout=10) as cluster:
        reply = cluster.quorate.echo.call_async("counted")
        assert reject_back(config, "rpc-quorate", 2) == [0, 1]
        container_factory(Quorate, config).start()
        assert reply.result() == "counted"


def test_existing_classic_queue_is_a_clear_error(container_factory, rabbit_config):
    # as Nameko (or QUEUE_TYPE classic) declared it
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        Queue("rpc-quorate", durable=True)(connection.channel()).declare()
    config = dict(rabbit_config, QUEUE_TYPE="quorum")
    container = container_factory(Quorate, config)
    with pytest.raises(ConfigurationError) as info:
        container.start()
    message = str(info.value)
    print(message)
    assert "PRECONDITION_FAILED - inequivalent arg" in message
    assert "exists as a classic queue" in message and "QUEUE_TYPE=quorum" in message
    assert f"rabbitmqctl delete_queue -p {rabbit_config['vhost']} rpc-quorate" in message


def test_changed_max_redeliveries_names_its_key(container_factory, rabbit_config):
    container = container_factory(Quorate, dict(rabbit_config, QUEUE_TYPE="quorum",
                                                 MAX_REDELIVERIES=5))
    container.start()
    container.stop()
    container = container_factory(Quorate, dict(rabbit_config, QUEUE_TYPE="quorum",
                                                 MAX_REDELIVERIES=7))
    with pytest.raises(ConfigurationError) as info:
        container.start()
    assert "'x-delivery-limit'" in str(info.value)
    assert "MAX_REDELIVERIES=7" in str(info.value)


@pytest.mark.parametrize("value", ["mirrored", 3])
def test_unknown_queue_type(container_factory, rabbit_config, value):
    container = container_factory(Quorate, dict(rabbit_config, QUEUE_TYPE=value))
    with pytest.raises(ConfigurationError, match="QUEUE_TYPE must be one of classic, quorum"):
        container.start()

