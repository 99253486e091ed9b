"""``QueueConsumer``: the container's one AMQP consumer, shared by its entrypoints.

``@consume``, ``@event_handler``, ``@rpc`` and the RPC reply listener all
register their queues with it. It also settles their messages: ack after the
work, bounded requeue, delay for a retry, dead-letter with a reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any, cast

from nameko_like import instrumentation, retry_delays, serialization
from nameko_like.amqp import dead_letter as dead_letters
from nameko_like.amqp.consume import ConsumerConnection, Delivery
from nameko_like.amqp.redelivery import RedeliveryCounter
from nameko_like.constants import (
    DEFAULT_MAX_REDELIVERIES,
    MAX_REDELIVERIES_CONFIG_KEY,
    PREFETCH_COUNT_CONFIG_KEY,
)
from nameko_like.decoding_limits import DEFAULT_LIMITS, DecodingLimits
from nameko_like.extensions import Extension, ProviderCollector, SharedExtension
from nameko_like.protocols import DeliveredMessage, MessageProvider

_log = logging.getLogger(__name__)


def _as_extension(provider: MessageProvider) -> Extension:
    """``provider`` as the extension it is (an entrypoint or a shared extension).

    The type system can't say "an Extension that is a MessageProvider";
    ProviderCollector only keeps providers to know when all are gone.
    """
    return cast("Extension", provider)


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
