"""``QueueConsumer.ack_message`` and ``requeue_message``: Nameko's names, for
custom entrypoints written for Nameko, which spawn their own workers and
settle in their result handler.

``requeue_message`` gives the message back to the broker, which redelivers
it; past ``MAX_REDELIVERIES`` redeliveries it is dead-lettered, not handled
(on RabbitMQ and on ``memory://``, whose redeliveries are flagged the same way).
"""

from kombu import Connection, Queue

from nameko_like.extensions import Entrypoint
from nameko_like.messaging import QueueConsumer
from nameko_like.testing.services import entrypoint_waiter

QUEUE = Queue("nameko-style-jobs", durable=True)
MAX_REDELIVERIES = 2


class JobEntrypoint(Entrypoint):
    """In Nameko's style: acknowledged after success, requeued after a failure."""

    queue_consumer = QueueConsumer()

    def __init__(self, queue, **kwargs):
        self.queue = queue
        super().__init__(**kwargs)

    def setup(self):
        self.queue_consumer.register_provider(self)

    def stop(self):
        self.queue_consumer.unregister_provider(self)

    def handle_message(self, message):
        body = self.queue_consumer.decode(message)
        self.container.spawn_worker(self, [body], {},
                                    handle_result=lambda *outcome: self.settle(message, *outcome))

    def settle(self, message, worker_ctx, result, exc_info):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
        else:
            self.queue_consumer.requeue_message(message)
        return result, exc_info


class Jobs:
    name = "jobs"
    attempts: list = []

    @JobEntrypoint.decorator(QUEUE)
    def run(self, job):
        Jobs.attempts.append(job)
        if job == "doomed" or Jobs.attempts.count(job) < 2:
            raise RuntimeError(f"{job} failed")
        return job


def ready_messages(config):
    with Connection(config["AMQP_URI"]) as connection:
        _name, ready, _consumers = connection.default_channel.queue_declare(
            QUEUE.name, passive=True)
    return ready


def test_ack_and_requeue_message(container_factory, backend, take_messages):
    Jobs.attempts = []
    config = dict(backend, MAX_REDELIVERIES=MAX_REDELIVERIES)
    container = container_factory(Jobs, config)
    container.start()
    with Connection(config["AMQP_URI"]) as connection:
        producer = connection.Producer(serializer="json")
        # fails once, is requeued, redelivered by the broker, then acknowledged
        with entrypoint_waiter(container, "run",
                               callback=lambda worker_ctx, result, exc_info: result):
            producer.publish("flaky", routing_key=QUEUE.name)
        producer.publish("doomed", routing_key=QUEUE.name)
    [dead] = take_messages(config, "jobs.dead-letter", timeout=10)
    assert dead.decode() == "doomed"
    assert f"MAX_REDELIVERIES={MAX_REDELIVERIES}" in dead.headers["x-dead-letter-reason"]
    # the first delivery and MAX_REDELIVERIES redeliveries ran; the next was not handled
    assert Jobs.attempts == ["flaky", "flaky"] + ["doomed"] * (MAX_REDELIVERIES + 1)
    assert ready_messages(config) == 0
