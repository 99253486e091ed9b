"""PublishChannel: one connection that publishes with pipelined confirms.

Nameko waits for each publish's confirm before the next publish can use the
connection, so a publisher's rate is its confirm round-trip rate. Here every
publish is written at once and gets a :class:`PublishOutcome`; confirms,
nacks and returns are matched to outcomes as they arrive. The guarantee is
the same (a caller that waits learns whether the broker took the message),
but many publishes share one round trip.

Confirms are read either by a reader greenthread (inside an eventlet
monkey-patched process, where services always run) or, in a plain script, by
whoever waits for an outcome.

The parts:

* this module: publishing (:class:`PublishChannel`);
* :mod:`nameko_like.amqp.publish_pool`: the channels of one owner (a
  runner, a container run alone, a standalone client), one per broker and
  connection settings, closed with their owner;
* the transport (:mod:`nameko_like.amqp.transport`): how a publish is
  written and declared on the broker in use;
* :mod:`nameko_like.amqp.publish_connection`: the connection underneath,
  its reconnects, reader, heartbeats, blocked state and channel errors;
* :mod:`nameko_like.amqp.confirms`: matching confirms, nacks and returns to
  outcomes;
* :mod:`nameko_like.amqp.retry`: how long a publish may wait for the broker,
  and the errors when it can't (``PublishConnectionLost``, ``PublishBlocked``).
"""

from __future__ import annotations

import time
from typing import Any

from kombu import Exchange

from nameko_like.amqp.connection import BrokerChannel, Declarable
from nameko_like.amqp.outcome import PublishOutcome
from nameko_like.amqp.publish_connection import BLOCKED_POLL, PublishConnection
from nameko_like.amqp.retry import (
    DEFAULT_RETRY_POLICY,
    PublishBlocked,
    PublishConnectionLost,
    deadline_for,
)
from nameko_like.exceptions import DeliveryError, PublishConfirmTimeout

__all__ = ["DEFAULT_RETRY_POLICY", "PublishBlocked", "PublishChannel", "PublishConfirmTimeout",
           "PublishConnectionLost"]


class _NotNow(DeliveryError):
    """No connection to publish on yet (or publishing is blocked): wait."""


class PublishChannel(PublishConnection):
    """A connection and a confirm-mode channel shared by many publishers."""

    def _declare(self, entities: tuple[Declarable, ...], channel: BrokerChannel) -> None:
        """Declare exchanges/queues not yet declared on this connection (once each)."""
        todo = [entity for entity in entities if entity not in self._declared]
        if not todo:
            return
        self._transport.declare(self.config, channel, todo)
        self._declared.update(todo)

    def publish(
        self,
        body: Any,
        exchange: str | Exchange = "",
        routing_key: str = "",
        mandatory: bool = False,
        retry: bool = True,
        retry_policy: dict[str, Any] | None = None,
        declare: tuple[Declarable, ...] = (),
        deadline: float | None = None,
        **properties: Any,
    ) -> PublishOutcome:
        """Publish one message; return its outcome without waiting.

        ``properties`` are kombu ``Producer.publish`` keywords: serializer,
        compression, headers, delivery_mode, priority, expiration,
        correlation_id, reply_to, content_type, ...

        While the broker can't be reached (or blocks publishing), this waits
        and retries for as long as ``retry`` and ``retry_policy`` allow (see
        :mod:`nameko_like.amqp.retry`), or until ``deadline`` (a
        ``time.monotonic()`` value), then raises ``PublishConnectionLost``
        (or ``PublishBlocked``).
        """
        exchange_name = exchange.name if isinstance(exchange, Exchange) else exchange
        if deadline is None:
            deadline = deadline_for(retry, retry_policy)
        first = True
        while True:
            if self.closed:
                # final: no broker coming back will reopen it, so don't wait
                raise PublishConnectionLost("publisher is closed")
            error: BaseException | None = None
            with self._lock:
                try:
                    self._check_idle_connection()
                    self._try_connect(force=first and not retry)
                    first = False
                    channel = self._channel
                    if self._connection is None or channel is None or self._blocked is not None:
                        raise _NotNow()
                    if declare:
                        self._declare(declare, channel)
                    outcome = self._transport.publish(channel, self._confirms, body,
                                                      exchange_name, routing_key, mandatory,
                                                      properties)
                    # a refused (nacked) publish is sent again until then
                    outcome.deadline = deadline
                    return outcome
                except _NotNow:
                    pass
                except self._connection_errors() as exc:
                    self._lost(exc)
                    error = exc
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._unavailable(error)
            wait = BLOCKED_POLL if self._blocked is not None else max(
                self._next_attempt_at - time.monotonic(), BLOCKED_POLL)
            self._sleep(min(wait, remaining))

    def wait(self, outcome: PublishOutcome, timeout: float | None = None) -> None:
        """Wait for ``outcome`` to settle, reading confirms if nobody else does.

        Raises the publish's error, or ``PublishConfirmTimeout`` (a delivery
        error) if the broker did not answer within ``timeout``.
        """
        if self._use_reader or outcome.settled:
            outcome.wait(timeout, green=self._use_reader)
            return
        outcome.wait(timeout, drain=lambda t: self._drain_until(outcome, t))

    def _drain_until(self, outcome: PublishOutcome, timeout: float | None) -> None:
        if not self.drain_until(lambda: outcome.settled, timeout):
            raise PublishConfirmTimeout(f"no confirm from the broker within {timeout}s")
