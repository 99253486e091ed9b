"""Generic AMQP extensions: ``Publisher``, ``@consume`` and the shared consumer.

These are the building blocks RPC and events are made of, and the ones to
use for plain messaging with queues and exchanges of your own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from kombu import Exchange, Queue
from kombu.exceptions import ContentDisallowed, DecodeError

from nameko_like import instrumentation, retries, retry_delays, serialization
from nameko_like.amqp import dead_letter as dead_letters
from nameko_like.amqp.connection import Declarable, make_connection
from nameko_like.amqp.consume import ConsumerConnection, Delivery
from nameko_like.amqp.context_headers import decode_context_headers as decode_context_headers
from nameko_like.amqp.context_headers import encode_context_headers as encode_context_headers
from nameko_like.amqp.publish import Publisher as _AmqpPublisher
from nameko_like.amqp.redelivery import RedeliveryCounter
from nameko_like.contracts import hooks as contracts
from nameko_like.constants import (
    DEFAULT_MAX_REDELIVERIES,
    MAX_REDELIVERIES_CONFIG_KEY,
    PREFETCH_COUNT_CONFIG_KEY,
)
from nameko_like.decoding_limits import DEFAULT_LIMITS, DecodingLimits
from nameko_like.exceptions import ContainerBeingKilled, IncorrectSignature
from nameko_like.extensions import (
    DependencyProvider,
    Entrypoint,
    Extension,
    ProviderCollector,
    SharedExtension,
)
from nameko_like.protocols import DeliveredMessage, ExcInfo, MessageProvider

if TYPE_CHECKING:
    from nameko_like.worker_context import WorkerContext

_log = logging.getLogger(__name__)


def _as_extension(provider: MessageProvider) -> Extension:
    """``provider`` as the extension it is (an entrypoint or a shared extension).

    The type system can't say "an Extension that is a MessageProvider";
    ProviderCollector only keeps providers to know when all are gone.
    """
    return cast("Extension", provider)


class HeaderEncoder:
    """Mixin giving extensions Nameko's header-encoding method name."""

    def get_message_headers(self, worker_ctx: WorkerContext) -> dict[str, Any]:
        """Headers that propagate ``worker_ctx``'s context data."""
        return encode_context_headers(worker_ctx.context_data)


class HeaderDecoder:
    """Mixin giving extensions Nameko's header-decoding method name."""

    def unpack_message_headers(self, message: DeliveredMessage) -> dict[str, Any]:
        """Context data carried by ``message``'s headers."""
        return decode_context_headers(message.headers)


class QueueConsumer(SharedExtension, ProviderCollector):
    """The container's one AMQP consumer; entrypoints register queues with it.

    It also settles messages for them: ack, bounded requeue, dead-letter.
    """

    def __init__(self) -> None:
        self._connection: ConsumerConnection | None = None
        self.accept: set[str] = set()
        self.max_redeliveries = DEFAULT_MAX_REDELIVERIES
        self.decoding_limits = DEFAULT_LIMITS
        #: messages whose worker has not finished, by id
        self._in_workers: dict[int, DeliveredMessage] = {}
        #: the broker's own redeliveries (lost acks, rejects with requeue)
        self._redeliveries = RedeliveryCounter()
        super().__init__()

    def setup(self) -> None:
        """Read the config; consuming starts in ``start``."""
        self._prepare()

    def _prepare(self) -> ConsumerConnection:
        # Entrypoints register in their own setup(), which may run before
        # this extension's: whoever comes first prepares the connection.
        if self._connection is None:
            config = self.container.config
            prefetch = config.get(PREFETCH_COUNT_CONFIG_KEY) or self.container.max_workers
            self.accept = serialization.content_types(serialization.setup(config).accept)
            self.max_redeliveries = config.get(MAX_REDELIVERIES_CONFIG_KEY,
                                               DEFAULT_MAX_REDELIVERIES)
            self.decoding_limits = DecodingLimits.from_config(config)
            self._connection = ConsumerConnection(self.container, config, prefetch)
            self._connection.on_handler_error = self._dead_letter_after_handler_error
        return self._connection

    def start(self) -> None:
        """Connect and consume every registered queue."""
        self._prepare().start()

    def stop(self) -> None:
        """Wait for the entrypoints to stop, then stop consuming."""
        super().stop()
        # Workers still holding a message were killed when the container's
        # grace period ran out: they will never settle it. Give it back to
        # the broker now instead of waiting for an ack that can't come.
        abandoned, self._in_workers = list(self._in_workers.values()), {}
        for message in abandoned:
            self._settle(message, True)
        if self._connection is not None:
            self._connection.stop()

    def kill(self) -> None:
        """Disconnect at once; unacknowledged messages return to their queues."""
        if self._connection is not None:
            self._connection.kill()

    @property
    def consuming(self) -> bool:
        """Whether the consumer is connected and consuming every queue (readiness)."""
        return self._connection is not None and self._connection.consuming

    def on_connection_lost(self, callback: Callable[[BaseException], None]) -> None:
        """Call ``callback(error)`` whenever the consumer connection drops."""
        self._prepare().on_lost.append(callback)

    # Narrower than ProviderCollector's: only extensions with a queue and a
    # handle_message (the MessageProvider seam) register here.
    def register_provider(  # type: ignore[override]
            self, provider: MessageProvider, needs_worker: bool = True) -> None:
        """Consume ``provider.queue``, calling ``provider.handle_message``.

        A provider whose ``handle_message`` never spawns a worker (RPC
        replies) passes ``needs_worker=False``: its messages are handled as
        they arrive, never held back until a worker is free.
        """
        queue = provider.queue
        if queue is None:
            raise TypeError(f"{provider!r} has no queue to consume: set its queue in setup() "
                            "before it registers with the QueueConsumer")
        super().register_provider(_as_extension(provider))
        self._prepare().add_queue(queue,
                                  partial(self._admit, queue.name, provider.handle_message),
                                  needs_worker=needs_worker)

    def _admit(self, queue_name: str, handle_message: Callable[[DeliveredMessage], None],
               message: DeliveredMessage) -> None:
        # A message the broker keeps giving back (its connection dropped
        # before the ack, or it was rejected with requeue) would otherwise
        # run forever: past MAX_REDELIVERIES it is dead-lettered instead.
        count = self._redeliveries.count(queue_name, message)
        if count and instrumentation.observers:
            instrumentation.emit("message_redelivered", self.container.service_name,
                                 queue_name, True)
        if count > self.max_redeliveries:
            self.dead_letter(message, f"redelivered {count} times by the broker "
                                      f"(MAX_REDELIVERIES={self.max_redeliveries})")
            return
        handle_message(message)

    def unregister_provider(self, provider: MessageProvider) -> None:  # type: ignore[override]
        """Stop consuming ``provider.queue``."""
        queue = provider.queue
        if self._connection is not None and queue is not None:
            self._connection.remove_queue(queue.name)
        super().unregister_provider(_as_extension(provider))

    # -- messages ---------------------------------------------------------------

    def decode(self, message: DeliveredMessage) -> Any:
        """The message body, decoded; refuses content types not accepted."""
        # kombu's own messages (memory://) arrive decompressed already
        headers = message.headers if isinstance(message, Delivery) else None
        return serialization.decode(message.body, message.content_type, message.content_encoding,
                                    self.accept, headers, self.decoding_limits)

    def worker_started(self, message: DeliveredMessage) -> None:
        """Note that a worker now handles ``message`` (see ``worker_finished``)."""
        self._in_workers[id(message)] = message

    def worker_finished(self, message: DeliveredMessage) -> None:
        """Note that the worker handling ``message`` finished (or never started)."""
        self._in_workers.pop(id(message), None)

    def ack(self, message: DeliveredMessage) -> None:
        """Acknowledge ``message``."""
        self._settle(message, None)

    def requeue(self, message: DeliveredMessage, queue_name: str) -> None:
        """Put ``message`` back on ``queue_name``, at most ``MAX_REDELIVERIES`` times.

        Past that it is dead-lettered, so a message that always fails can't
        hot-loop between the broker and the service.
        """
        count = dead_letters.redelivery_count(message)
        if count >= self.max_redeliveries:
            self.dead_letter(message, f"handler failed {count + 1} times "
                                      f"(MAX_REDELIVERIES={self.max_redeliveries})")
            return
        if instrumentation.observers:
            instrumentation.emit("message_redelivered", self.container.service_name,
                                 queue_name, False)
        headers = dead_letters.origin_headers(message)
        headers[dead_letters.REDELIVERY_HEADER] = count + 1
        dead_letters.republish(
            self.container.config, message, queue_name, headers,
            partial(self._settle_after_copy, message),
        )

    def dead_letter(self, message: DeliveredMessage, reason: str,
                    headers: dict[str, Any] | None = None,
                    drop_headers: tuple[str, ...] = ()) -> None:
        """Move ``message`` to the service's dead-letter queue with ``reason``
        (plus ``headers``, minus ``drop_headers``)."""
        if instrumentation.observers:
            instrumentation.emit("message_dead_lettered", self.container.service_name, reason)
        dead_letters.dead_letter(
            self.container.config, self.container.service_name, message, reason,
            partial(self._settle_after_copy, message), headers, drop_headers,
        )

    def delay(self, message: DeliveredMessage, queue_name: str, seconds: float,
              headers: dict[str, Any]) -> None:
        """Move ``message`` to the delay topology: it returns to ``queue_name``
        after ``seconds`` with ``headers`` added (see :mod:`nameko_like.retries`)."""
        if instrumentation.observers:
            instrumentation.emit("message_retry_scheduled", self.container.service_name,
                                 queue_name, seconds)
        retry_delays.wait_then_return(
            self.container.config, self.container.service_name, message, queue_name, seconds,
            headers, partial(self._settle_after_copy, message),
        )

    def _dead_letter_after_handler_error(self, message: DeliveredMessage,
                                         error: Exception) -> None:
        # An entrypoint's handle_message raised where it should have settled
        # the message itself: a bug, or a message no check foresaw. Either
        # way it must not loop back to the queue nor stop the reader.
        self.worker_finished(message)
        self.dead_letter(message, f"{type(error).__name__} while handling the message: {error}")

    def _settle_after_copy(self, message: DeliveredMessage, error: BaseException | None) -> None:
        if error is None:
            self._settle(message, None)
        else:
            # keep the original rather than lose it; the broker redelivers it
            _log.warning("could not move a message aside (%s); requeueing it", error)
            self._settle(message, True)

    def _settle(self, message: DeliveredMessage, requeue: bool | None) -> None:
        if self._connection is not None:
            self._connection.settle(message, requeue)


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
        """Spawn a worker for ``message``, settling it when the worker is done."""
        contract = contracts.contract_of(self)
        if contract is not None:
            try:
                args, kwargs = contract.validate_arguments(args, kwargs)
            except contracts.ValidationError as exc:
                self.queue_consumer.dead_letter(message, f"ValidationError: {exc}")
                return
        self.queue_consumer.worker_started(message)
        try:
            worker_ctx = self.container.spawn_worker(
                self, args, kwargs,
                context_data=self.unpack_message_headers(message),
                handle_result=partial(self.handle_result, message),
            )
            if instrumentation.observers:
                instrumentation.emit("worker_spawned", worker_ctx, message)
        except IncorrectSignature as exc:
            self.queue_consumer.worker_finished(message)
            self.queue_consumer.dead_letter(message, f"{type(exc).__name__}: {exc}")
        except ContainerBeingKilled:
            self.queue_consumer.worker_finished(message)
            self.queue_consumer._settle(message, True)

    def handle_result(self, message: DeliveredMessage, worker_ctx: WorkerContext, result: Any,
                      exc_info: ExcInfo | None) -> tuple[Any, ExcInfo | None]:
        """Settle ``message`` once its worker finished."""
        self.queue_consumer.worker_finished(message)
        if exc_info is not None and retries.after_failure(
                self.queue_consumer, message, self.queue.name, self.retry,
                exc_info[1]) is not retries.Outcome.NOT_RETRIED:
            pass  # settled by the retry: delayed, or dead-lettered after the last attempt
        elif exc_info is not None and self.requeue_on_error:
            self.queue_consumer.requeue(message, self.queue.name)
        else:
            self.queue_consumer.ack(message)
        return result, exc_info


consume = Consumer.decorator


class Publisher(DependencyProvider, HeaderEncoder):
    """Injects a ``publish(payload, **kwargs)`` function.

    Messages carry the worker's context data as headers and are confirmed by
    the broker before ``publish`` returns.

    Args:
        exchange: exchange to publish to (declared on first use).
        queue: a queue to declare (and publish to, if no exchange is given).
        declare: more exchanges or queues to declare.
        **options: publisher options: delivery_mode, priority, expiration,
            compression, serializer, retry, retry_policy, use_confirms,
            mandatory.
    """

    def __init__(self, exchange: Exchange | None = None, queue: Queue | None = None,
                 declare: list[Declarable] | None = None, **options: Any) -> None:
        self.exchange = exchange
        self.queue = queue
        self.declare = list(declare or [])
        self.options = options
        self.publisher: _AmqpPublisher | None = None

    def setup(self) -> None:
        """Build the publisher from the container config."""
        declare = list(self.declare)
        if self.exchange is not None:
            declare.append(self.exchange)
        if self.queue is not None:
            declare.append(self.queue)
            queue_exchange = self.queue.exchange
            if self.exchange is None and queue_exchange is not None and queue_exchange.name:
                self.exchange = queue_exchange
        config = self.container.config
        options = dict(self.options)
        options.setdefault("serializer", serialization.setup(config).serializer)
        # Declared now, as Nameko does, so that queues exist (and collect
        # messages) from start-up even if nothing is ever published.
        _declare_now(config, declare)
        self.publisher = _AmqpPublisher(config=config, declare=declare, **options)

    def get_dependency(self, worker_ctx: WorkerContext) -> Callable[..., None]:
        """A ``publish`` function bound to this worker's context data."""
        headers = self.get_message_headers(worker_ctx)
        exchange = self.exchange.name if self.exchange is not None else ""
        default_key = self.queue.name if (self.queue is not None and not exchange) else ""
        publisher = self.publisher
        assert publisher is not None

        def publish(payload: Any, **kwargs: Any) -> None:
            kwargs.setdefault("exchange", exchange)
            kwargs.setdefault("routing_key", default_key)
            extra = kwargs.pop("extra_headers", None) or {}
            merged = dict(headers)
            merged.update(extra)
            merged.update(kwargs.pop("headers", None) or {})
            with (instrumentation.publishing(kwargs["exchange"], kwargs["routing_key"], merged)
                  if instrumentation.observers else instrumentation.UNOBSERVED):
                publisher.publish(payload, headers=merged, **kwargs)

        return publish


def _declare_now(config: dict[str, Any], entities: list[Declarable]) -> None:
    """Declare exchanges and queues (with their bindings) on a short-lived connection."""
    if not entities:
        return
    with make_connection(config, heartbeat=False) as connection:
        channel = connection.channel()
        for entity in entities:
            entity(channel).declare()
