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

* this module: publishing (:class:`PublishChannel`) and the process-wide
  channels, one per broker and connection settings
  (:func:`get_publish_channel`);
* :mod:`nameko_like.amqp.publish_connection`: the connection underneath,
  its reconnects, reader, heartbeats, blocked state and channel errors;
* :mod:`nameko_like.amqp.confirms`: matching confirms, nacks and returns to
  outcomes;
* :mod:`nameko_like.amqp.retry`: how long a publish may wait for the broker,
  and the errors when it can't (``PublishConnectionLost``, ``PublishBlocked``).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from kombu import Exchange, Producer

from nameko_like.amqp.channel_errors import SentPublish
from nameko_like.amqp.connection import (
    BrokerChannel,
    ConnectionKey,
    Declarable,
    connection_key,
    make_connection,
)
from nameko_like.amqp.encode import build_message, send_publish
from nameko_like.amqp.outcome import PublishOutcome, settled_outcome
from nameko_like.amqp.publish_connection import BLOCKED_POLL, PublishConnection
from nameko_like.amqp.retry import (
    DEFAULT_RETRY_POLICY,
    PublishBlocked,
    PublishConnectionLost,
    deadline_for,
)
from nameko_like.exceptions import DeliveryError, RpcTimeout, UndeliverableMessage

__all__ = ["DEFAULT_RETRY_POLICY", "PublishBlocked", "PublishChannel", "PublishConnectionLost",
           "get_publish_channel", "reset_publish_channels"]


class _NotNow(DeliveryError):
    """No connection to publish on yet (or publishing is blocked): wait."""


class PublishChannel(PublishConnection):
    """A connection and a confirm-mode channel shared by many publishers."""

    def _declare(self, entities: tuple[Declarable, ...], channel: BrokerChannel) -> None:
        """Declare exchanges/queues not yet declared on this connection.

        Declaring waits for the broker's answer, which would mean reading
        the socket the reader greenthread owns; so it happens on a
        short-lived connection of its own. It is rare: once per entity.
        """
        todo = [entity for entity in entities if entity not in self._declared]
        if not todo:
            return
        if self._memory:
            for entity in todo:
                entity(channel).declare()
        else:
            with make_connection(self.config, heartbeat=False) as connection:
                declaring = connection.channel()
                for entity in todo:
                    entity(declaring).declare()
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
                    channel, producer = self._channel, self._producer
                    if (self._connection is None or channel is None or producer is None
                            or self._blocked is not None):
                        raise _NotNow()
                    if declare:
                        self._declare(declare, channel)
                    if self._memory:
                        return self._publish_in_memory(channel, producer, body, exchange_name,
                                                       routing_key, mandatory, properties)
                    message = build_message(body, **properties)
                    send_publish(channel, message, exchange_name, routing_key, mandatory)
                    # Tracked only once written: a body that fails to
                    # serialize must not take a delivery tag. Nothing can
                    # be confirmed between the write and this line, as
                    # they don't yield.
                    return self._confirms.sent(
                        SentPublish(message, exchange_name, routing_key, mandatory))
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

    @staticmethod
    def _publish_in_memory(channel: BrokerChannel, producer: Producer, body: Any, exchange: str,
                           routing_key: str, mandatory: bool,
                           properties: dict[str, Any]) -> PublishOutcome:
        if mandatory and exchange:
            try:
                routes = channel.typeof(exchange).lookup(channel.get_table(exchange), exchange,
                                                         routing_key, None)
            except KeyError:
                routes = []
            if not routes:
                return settled_outcome(UndeliverableMessage(
                    f"no queue bound to exchange {exchange!r} with routing key {routing_key!r}"))
        producer.publish(body, exchange=exchange, routing_key=routing_key, retry=False,
                         **properties)
        return settled_outcome()

    def wait(self, outcome: PublishOutcome, timeout: float | None = None) -> None:
        """Wait for ``outcome`` to settle, reading confirms if nobody else does."""
        if self._use_reader or outcome.settled:
            outcome.wait(timeout)
            return
        outcome.wait(timeout, drain=lambda t: self._drain_until(outcome, t))

    def _drain_until(self, outcome: PublishOutcome, timeout: float | None) -> None:
        if not self.drain_until(lambda: outcome.settled, timeout):
            raise RpcTimeout(f"no confirm from the broker within {timeout}s")


# -- the process-wide channels ------------------------------------------------------

_channels: dict[ConnectionKey, PublishChannel] = {}
_channels_lock = threading.Lock()


_keys: dict[int, tuple[dict[str, Any], ConnectionKey]] = {}
#: Most config dicts whose connection key is remembered. Services use a
#: handful; a program making a standalone dispatcher per event brings a new
#: dict each time, and the cache must not keep them all alive.
_KEYS_CACHE_SIZE = 64


def get_publish_channel(config: dict[str, Any]) -> PublishChannel:
    """The process-wide PublishChannel for the broker of ``config``.

    One pipelined connection per broker and connection settings is the
    bounded pool: a publisher never waits for a connection to be free.
    Called for every reply and event, so the connection key is worked out
    once per config dict (config is not expected to change once services
    run).
    """
    cached = _keys.get(id(config))
    if cached is not None and cached[0] is config:
        key = cached[1]
    else:
        key = connection_key(config)
        if len(_keys) >= _KEYS_CACHE_SIZE:
            _keys.clear()
        _keys[id(config)] = (config, key)
    channel = _channels.get(key)
    if channel is not None and not channel.closed:
        return channel
    with _channels_lock:
        channel = _channels.get(key)
        if channel is None or channel.closed:
            channel = _channels[key] = PublishChannel(config)
        return channel


def _forget_after_fork() -> None:
    """In a forked child, drop the parent's publish connections unclosed.

    Their sockets are shared with the parent: closing them (or publishing
    on them) from the child would corrupt the parent's AMQP stream. The
    child connects afresh on its first publish.
    """
    _channels.clear()
    _keys.clear()
    global _channels_lock
    _channels_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def reset_publish_channels() -> None:
    """Close every shared publish channel (tests, forked processes)."""
    with _channels_lock:
        channels = list(_channels.values())
        _channels.clear()
    for channel in channels:
        channel.close()
