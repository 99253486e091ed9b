"""An error in an entrypoint's handle_message belongs to its message, not to the reader."""

import pytest
from kombu import Connection, Queue

from nameko_like._eventlet import eventlet
from nameko_like.messaging import Consumer

pytestmark = pytest.mark.integration

QUEUE = Queue("fragile-handling", durable=True)
handled = []


class FragileConsumer(Consumer):
    """Raises in handle_message itself (before any worker) for one message."""

    def handle_message(self, message):
        if message.headers.get("poison"):
            raise LookupError("handle_message tripped over this message")
        super().handle_message(message)


class Service:
    name = "fragile_handling"

    @FragileConsumer.decorator(QUEUE)
    def take(self, body):
        handled.append(body)


def test_handler_error_dead_letters_that_message_and_the_rest_flow(
        container_factory, rabbit_config, take_messages):
    handled.clear()
    container = container_factory(Service, rabbit_config)
    container.start()
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        producer = connection.Producer()
        for number in range(5):
            producer.publish(number, routing_key=QUEUE.name, declare=[QUEUE],
                             headers={"poison": number == 2})
    [dead] = take_messages(rabbit_config, "fragile_handling.dead-letter", timeout=10)
    for _ in range(500):
        if len(handled) == 4:
            break
        eventlet.sleep(0.01)
    eventlet.sleep(0.3)  # a redelivery would show now
    assert sorted(handled) == [0, 1, 3, 4]
    assert dead.decode() == 2
    assert dead.headers["x-dead-letter-reason"] == (
        "LookupError while handling the message: handle_message tripped over this message")
    # the consumer is still there, and the queue drained
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        _name, ready, consumers = connection.default_channel.queue_declare(
            QUEUE.name, passive=True)
    assert (ready, consumers) == (0, 1)
