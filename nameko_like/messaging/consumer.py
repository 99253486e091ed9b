"""``@consume``: run a service method for each message on a queue."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kombu import Queue
from kombu.exceptions import ContentDisallowed, DecodeError

from nameko_like import retries
from nameko_like.contracts import hooks as contracts
from nameko_like.extensions import Entrypoint
from nameko_like.messaging.headers import HeaderDecoder
from nameko_like.messaging.queue_consumer import QueueConsumer
from nameko_like.protocols import DeliveredMessage, ExcInfo

if TYPE_CHECKING:
    from nameko_like.worker_context import WorkerContext


class Consumer(Entrypoint, HeaderDecoder):
    """Runs the decorated method with the body of each message on ``queue``.

    The message is acknowledged once the worker finished. With ``retry``
    (a :class:`~nameko_like.retries.Retry`) a message whose handler raised
    one of its exceptions runs again after a delay, up to its attempts, then
    is dead-lettered. With ``requeue_on_error`` a message whose handler
    raised (anything ``retry`` doesn't cover) is requeued at once (bounded by
    ``MAX_REDELIVERIES``, then dead-lettered); otherwise it is acknowledged
    anyway. Messages that can't be decoded are dead-lettered.
    """

    queue_consumer = QueueConsumer()
    #: class-level default, for subclasses whose __init__ skips ours
    retry: retries.Retry | None = None

    def __init__(self, queue: Queue, requeue_on_error: bool = False,
                 retry: retries.Retry | None = None, **kwargs: Any) -> None:
        self.queue = queue
        self.requeue_on_error = requeue_on_error
        self.retry = retries.as_retry(retry)
        super().__init__(**kwargs)

    def setup(self) -> None:
        """Register this entrypoint's queue with the container's consumer."""
        contracts.prepare(self)
        self.queue_consumer.register_provider(self)

    def stop(self) -> None:
        """Stop consuming this entrypoint's queue."""
        self.queue_consumer.unregister_provider(self)

    def handle_message(self, message: DeliveredMessage) -> None:
        """Decode ``message`` and run a worker for it."""
        try:
            body = self.queue_consumer.decode(message)
        except (ContentDisallowed, DecodeError) as exc:
            self.queue_consumer.dead_letter(message, f"cannot decode message: {exc}")
            return
        self.spawn_for(message, (body,), {})

    def spawn_for(self, message: DeliveredMessage, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> None:
        """Run a worker for ``message``, settling it when the worker is done."""
        self.queue_consumer.run_worker(self, message, args, kwargs, self.handle_result,
                                       context_data=self.unpack_message_headers(message))

    def handle_result(self, message: DeliveredMessage, worker_ctx: WorkerContext, result: Any,
                      exc_info: ExcInfo | None) -> tuple[Any, ExcInfo | None]:
        """Settle ``message`` once its worker finished (see the class docstring)."""
        self.queue_consumer.settle_after_worker(
            message, self.queue.name, exc_info[1] if exc_info is not None else None,
            self.retry, self.requeue_on_error)
        return result, exc_info


consume = Consumer.decorator
