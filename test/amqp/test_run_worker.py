"""``QueueConsumer.run_worker`` for an entrypoint of one's own, with its defaults:
acknowledged after the worker whatever its outcome, dead-lettered when the
arguments don't fit the method."""

import pytest
from kombu import Connection, Queue

from nameko_like.extensions import Entrypoint
from nameko_like.messaging import QueueConsumer
from nameko_like.testing.services import entrypoint_waiter

pytestmark = pytest.mark.integration

QUEUE = Queue("run-worker-sums", durable=True)


class SumEntrypoint(Entrypoint):
    """Runs the method with the items of each message's (list) body as arguments."""

    queue_consumer = QueueConsumer()

    def __init__(self, queue, **kwargs):
        self.queue = queue
        super().__init__(**kwargs)

    def setup(self):
        self.queue_consumer.register_provider(self)

    def stop(self):
        self.queue_consumer.unregister_provider(self)

    def handle_message(self, message):
        self.queue_consumer.run_worker(self, message, self.queue_consumer.decode(message), {})


class Adder:
    name = "adder"

    @SumEntrypoint.decorator(QUEUE)
    def add(self, a, b):
        return a / b


def queue_state(config):
    with Connection(config["AMQP_URI"]) as connection:
        _name, ready, consumers = connection.default_channel.queue_declare(
            QUEUE.name, passive=True)
    return ready, consumers


def test_run_worker_settles_by_default(container_factory, rabbit_config, take_messages):
    container = container_factory(Adder, rabbit_config)
    container.start()
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        producer = connection.Producer()
        with entrypoint_waiter(container, "add") as added:
            producer.publish([6, 3], routing_key=QUEUE.name)
        assert added.get() == 2
        with entrypoint_waiter(container, "add") as failed:
            producer.publish([6, 0], routing_key=QUEUE.name)
        with pytest.raises(ZeroDivisionError):
            failed.get()
        producer.publish([6], routing_key=QUEUE.name)
    [dead] = take_messages(rabbit_config, "adder.dead-letter", timeout=10)
    assert dead.decode() == [6]
    assert dead.headers["x-dead-letter-reason"].startswith("IncorrectSignature: ")
    # the failed one was acknowledged all the same: nothing waits or comes back
    assert queue_state(rabbit_config) == (0, 1)
