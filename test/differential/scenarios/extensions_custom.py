"""Custom extensions whose __init__ skips super().__init__(), in a running container.

Nameko lets an Entrypoint, DependencyProvider or Extension subclass define
its own ``__init__`` without calling the base one; such a container must
serve RPC (signature checks included) and work with ``entrypoint_hook``.

An AMQP entrypoint written for Nameko spawns its own workers and settles
with ``QueueConsumer.ack_message`` and ``requeue_message``: a job that fails
once is requeued, redelivered by the broker, then acknowledged.
"""

import eventlet
from _side import config, module, outcome, run_main
from kombu import Connection, Queue

extensions = module("extensions")
messaging = module("messaging")
rpc = module("rpc")
containers = module("containers")
standalone_rpc = module("standalone.rpc")
testing_services = module("testing.services")


class Tagged(extensions.Extension):
    """A sub-extension that never calls Extension.__init__."""

    def __init__(self, tag):
        self.tag = tag


class Answer(extensions.DependencyProvider):
    """A dependency provider with its own __init__ and a sub-extension."""

    helper = Tagged("helper")

    def __init__(self, value):
        self.value = value

    def get_dependency(self, worker_ctx):
        return {"value": self.value, "helper": self.helper.tag,
                "helper_bound": self.helper.is_bound()}


class TaggedRpc(rpc.Rpc):
    """An rpc-style entrypoint that never calls Entrypoint.__init__."""

    def __init__(self, tag):
        self.tag = tag


class Custom(extensions.Entrypoint):
    """A plain custom entrypoint that never calls Entrypoint.__init__."""

    def __init__(self, tag):
        self.tag = tag


JOBS = Queue("custom-jobs", durable=True)
#: every job run, in order (a job fails on its first run)
attempts = []


class Jobs(extensions.Entrypoint):
    """An AMQP entrypoint in Nameko's style: ack after success, requeue after a failure."""

    queue_consumer = messaging.QueueConsumer()

    def __init__(self, queue, **kwargs):
        self.queue = queue
        super().__init__(**kwargs)

    def setup(self):
        self.queue_consumer.register_provider(self)

    def stop(self):
        self.queue_consumer.unregister_provider(self)
        super().stop()

    def handle_message(self, *delivery):
        # Nameko passes (body, message); nameko_like passes the message
        message = delivery[-1]
        body = delivery[0] if len(delivery) == 2 else self.queue_consumer.decode(message)
        self.container.spawn_worker(self, [body], {},
                                    handle_result=lambda *done: self.settle(message, *done))

    def settle(self, message, worker_ctx, result, exc_info):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
        else:
            self.queue_consumer.requeue_message(message)
        return result, exc_info


class Service:
    name = "custom"
    answer = Answer(42)

    @Jobs.decorator(JOBS)
    def job(self, name):
        attempts.append(name)
        if attempts.count(name) == 1:
            raise RuntimeError(f"{name}: first run fails")
        return name

    @TaggedRpc.decorator("t1")
    def add(self, a, b):
        return {"sum": a + b, "answer": self.answer}

    @Custom.decorator("c1")
    def hooked(self, x):
        return {"x": x, "answer": self.answer}


def main():
    container = containers.ServiceContainer(Service, config())
    container.start()
    try:
        described = sorted(
            [type(ext).__name__, getattr(ext, "tag", None),
             getattr(ext, "method_name", None) or getattr(ext, "attr_name", None)]
            for ext in container.extensions
            if type(ext) in (Tagged, Answer, TaggedRpc, Custom, Jobs))
        with testing_services.entrypoint_hook(container, "hooked") as hooked:
            hook_result = outcome(hooked, 5)
        with testing_services.entrypoint_hook(container, "add") as add:
            hook_add = outcome(add, 1, 2)
        with Connection(config()["AMQP_URI"]) as connection:
            connection.Producer(serializer="json").publish("j1", routing_key=JOBS.name)
        with eventlet.Timeout(10, False):
            while len(attempts) < 2:
                eventlet.sleep(0.01)
        eventlet.sleep(0.1)  # time for a (wrong) third run
        with standalone_rpc.ClusterRpcProxy(config(), timeout=10) as cluster:
            return {
                "extensions": described,
                "hook": hook_result,
                "hook_add": hook_add,
                "job_attempts": list(attempts),
                "rpc_add": outcome(cluster.custom.add, 1, 2),
                "rpc_bad_signature": outcome(cluster.custom.add, 1, 2, 3),
            }
    finally:
        container.stop()


run_main(main)
