"""A custom AMQP entrypoint: ``@on_audit(pattern)`` runs the decorated method
for each message published to the ``audit`` topic exchange with a routing
key matching ``pattern``, passing the routing key and the body.

It consumes through the container's shared ``QueueConsumer``, as ``@rpc``,
``@event_handler`` and ``@consume`` do, and lets it run the worker and
settle the message: acknowledged once the method returned, requeued if it
raised (past ``MAX_REDELIVERIES``, dead-lettered), dead-lettered with the
reason if it can't be decoded or doesn't fit the method's signature.
"""

from kombu import Exchange, Queue
from kombu.exceptions import ContentDisallowed, DecodeError

from nameko_like.extensions import Entrypoint
from nameko_like.messaging import QueueConsumer

audit_exchange = Exchange("audit", type="topic", durable=True)


class AuditEntrypoint(Entrypoint):
    """Runs the decorated method with ``(routing_key, body)`` of each audit message."""

    # One per container, whichever entrypoints declare it: one connection
    # consumes all of the service's queues.
    queue_consumer = QueueConsumer()

    def __init__(self, pattern, **kwargs):
        self.pattern = pattern
        self.queue = None
        super().__init__(**kwargs)

    def setup(self):
        # One queue per service and method, shared by the service's
        # instances: each message is handled once per service.
        name = f"audit--{self.container.service_name}.{self.method_name}"
        self.queue = Queue(name, exchange=audit_exchange, routing_key=self.pattern,
                           durable=True)
        self.queue_consumer.register_provider(self)

    def stop(self):
        self.queue_consumer.unregister_provider(self)

    def handle_message(self, message):
        # Called by the consumer's reader thread: decide and hand over, never wait.
        try:
            body = self.queue_consumer.decode(message)
        except (ContentDisallowed, DecodeError) as exc:
            self.queue_consumer.dead_letter(message, f"cannot decode the audit entry: {exc}")
            return
        routing_key = message.delivery_info["routing_key"]
        self.queue_consumer.run_worker(self, message, (routing_key, body), {}, self.settle)

    def settle(self, message, worker_ctx, result, exc_info):
        # In the worker, once the method returned or raised.
        error = exc_info[1] if exc_info is not None else None
        self.queue_consumer.settle_after_worker(message, self.queue.name, error,
                                                requeue_on_error=True)
        return result, exc_info


on_audit = AuditEntrypoint.decorator


class AuditService:
    name = "audit"

    @on_audit("orders.*")
    def record(self, action, entry):
        if entry["amount"] < 0:
            raise ValueError(f"order {entry['order']}: negative amount")
        return f"{action}: order {entry['order']}, {entry['amount']}"
