"""``QueueConsumer``: the container's one AMQP consumer, shared by its entrypoints.

``@consume``, ``@event_handler``, ``@rpc`` and the RPC reply listener all
register their queues with it. It also settles their messages: ack after the
work, bounded requeue, delay for a retry, dead-letter with a reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from nameko_like import instrumentation, retries, retry_delays, serialization
from nameko_like.amqp import dead_letter as dead_letters
from nameko_like.amqp.consume import ConsumerConnection
from nameko_like.amqp.context_headers import decode_context_headers
from nameko_like.amqp.redelivery import RedeliveryCounter
from nameko_like.constants import (
    DEFAULT_MAX_REDELIVERIES,
    MAX_REDELIVERIES_CONFIG_KEY,
    PREFETCH_COUNT_CONFIG_KEY,
)
from nameko_like.contracts import hooks as contracts
from nameko_like.decoding_limits import DEFAULT_LIMITS, DecodingLimits
from nameko_like.exceptions import ContainerBeingKilled, IncorrectSignature
from nameko_like.extensions import Extension, ProviderCollector, SharedExtension
from nameko_like.protocols import DeliveredMessage, ExcInfo, MessageProvider

if TYPE_CHECKING:
    from nameko_like.extensions import Entrypoint
    from nameko_like.worker_context import WorkerContext

_log = logging.getLogger(__name__)

#: ``handle_result(message, worker_ctx, result, exc_info)``, given to
#: :meth:`QueueConsumer.run_worker`: runs in the worker once the method
#: returned (``exc_info`` None) or raised, settles ``message``, and returns
#: the ``(result, exc_info)`` the dependencies then see.
MessageResultHandler = Callable[
    [DeliveredMessage, "WorkerContext", Any, "ExcInfo | None"],
    tuple[Any, "ExcInfo | None"],
]

#: ``on_refused(message, error)``, given to :meth:`QueueConsumer.run_worker`:
#: settles a message whose arguments don't fit the method.
RefusalHandler = Callable[[DeliveredMessage, Exception], None]


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
            self.give_back(message)
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
        return serialization.decode(message.body, message.content_type, message.content_encoding,
                                    self.accept, message.headers, self.decoding_limits)

    # -- workers ----------------------------------------------------------------

    def run_worker(self, entrypoint: Entrypoint, message: DeliveredMessage,
                   args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any],
                   handle_result: MessageResultHandler | None = None, *,
                   context_data: dict[str, Any] | None = None,
                   on_refused: RefusalHandler | None = None) -> WorkerContext | None:
        """Run ``entrypoint``'s method for ``message`` in a worker, then settle it.

        ``handle_result(message, worker_ctx, result, exc_info)`` settles the
        message once the method returned or raised (see
        :data:`MessageResultHandler`; :meth:`settle_after_worker` is the
        usual way); without it the message is acknowledged whatever the
        outcome. Until then the message counts as in a worker: if the
        container stops before the worker settles it, it goes back to its
        queue. ``context_data`` defaults to what the message's headers carry.

        Arguments that don't fit the method (its signature, or its contract
        if it has one) run no worker: ``on_refused(message, error)`` settles
        the message; by default it is dead-lettered with the error as
        reason. A container being killed runs no worker either: the message
        goes back to its queue. Returns the worker's context, or None when
        no worker runs.
        """
        contract = contracts.contract_of(entrypoint)
        if contract is not None:
            try:
                args, kwargs = contract.validate_arguments(args, kwargs)
            except contracts.ValidationError as exc:
                (on_refused or self._dead_letter_refused)(message, exc)
                return None
        self._in_workers[id(message)] = message
        settle = handle_result or self._ack_anyway
        try:
            worker_ctx = self.container.spawn_worker(
                entrypoint, args, kwargs,
                context_data=(decode_context_headers(message.headers) if context_data is None
                              else context_data),
                handle_result=partial(self._worker_done, message, settle),
            )
        except IncorrectSignature as exc:
            self._worker_finished(message)
            (on_refused or self._dead_letter_refused)(message, exc)
            return None
        except ContainerBeingKilled:
            self._worker_finished(message)
            self.give_back(message)
            return None
        if instrumentation.observers:
            instrumentation.emit("worker_spawned", worker_ctx, message)
        return worker_ctx

    def _worker_done(self, message: DeliveredMessage, handle_result: MessageResultHandler,
                     worker_ctx: WorkerContext, result: Any,
                     exc_info: ExcInfo | None) -> tuple[Any, ExcInfo | None]:
        self._worker_finished(message)
        return handle_result(message, worker_ctx, result, exc_info)

    def _ack_anyway(self, message: DeliveredMessage, _worker_ctx: WorkerContext, result: Any,
                    exc_info: ExcInfo | None) -> tuple[Any, ExcInfo | None]:
        self.ack(message)
        return result, exc_info

    def _dead_letter_refused(self, message: DeliveredMessage, error: Exception) -> None:
        self.dead_letter(message, f"{type(error).__name__}: {error}")

    def settle_after_worker(self, message: DeliveredMessage, queue_name: str,
                            error: BaseException | None, retry: retries.Retry | None = None,
                            requeue_on_error: bool = False) -> None:
        """Settle ``message`` once its worker finished, ``error`` being what it raised.

        Acknowledged after a success. After a failure: with ``retry`` (a
        :class:`~nameko_like.retries.Retry` covering ``error``) it runs again
        after a delay, and is dead-lettered after the last attempt; else
        with ``requeue_on_error`` it is requeued to ``queue_name`` (see
        :meth:`requeue`); else acknowledged anyway.
        """
        if error is not None and retries.after_failure(
                self, message, queue_name, retry, error) is not retries.Outcome.NOT_RETRIED:
            return  # settled by the retry: delayed, or dead-lettered after the last attempt
        if error is not None and requeue_on_error:
            self.requeue(message, queue_name)
        else:
            self.ack(message)

    def _worker_finished(self, message: DeliveredMessage) -> None:
        # the worker handling ``message`` finished (or never started)
        self._in_workers.pop(id(message), None)

    def ack(self, message: DeliveredMessage) -> None:
        """Acknowledge ``message``."""
        self._settle(message, None)

    def give_back(self, message: DeliveredMessage) -> None:
        """Return ``message`` to its queue unsettled, for the broker to redeliver.

        For messages nothing went wrong with (no entrypoint to take them
        now, a reply the broker did not confirm): unlike :meth:`requeue` it
        is not counted as a failure of the handler.
        """
        self._settle(message, True)

    # Nameko's names, for entrypoints written for Nameko
    def ack_message(self, message: DeliveredMessage) -> None:
        """Acknowledge ``message`` (Nameko's name for :meth:`ack`).

        A message from a connection since lost is left alone: the broker has
        already made it available again.
        """
        self._settle(message, None)

    def requeue_message(self, message: DeliveredMessage) -> None:
        """Reject ``message`` back to its queue for the broker to redeliver (as Nameko).

        The broker delivers it again flagged as redelivered; each such
        redelivery counts, and past ``MAX_REDELIVERIES`` the message is
        dead-lettered instead of handled, so one that always fails can't
        hot-loop. Same as :meth:`give_back`; :meth:`requeue` republishes
        with a count in the message's headers instead.
        """
        self._settle(message, True)

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
            partial(self._settle_after_copy, message), pool=self.container.publish_pool,
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
            pool=self.container.publish_pool,
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
            headers, partial(self._settle_after_copy, message), pool=self.container.publish_pool,
        )

    def _dead_letter_after_handler_error(self, message: DeliveredMessage,
                                         error: Exception) -> None:
        # An entrypoint's handle_message raised where it should have settled
        # the message itself: a bug, or a message no check foresaw. Either
        # way it must not loop back to the queue nor stop the reader.
        self._worker_finished(message)
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
