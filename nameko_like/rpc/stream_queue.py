"""StreamQueue: the caller's own queue and connection for one stream's items.

A stream's items don't share the proxy's reply queue: they go to a queue
made for the stream, consumed with acknowledgements and a prefetch limit,
and each item is acknowledged only when the caller takes it. So a caller
that iterates slowly holds at most ``prefetch`` items; the rest wait in
the broker (which pages them to disk), and the serving side, which waits
for its publish confirms, holds no more than its window either.

Only the greenthread iterating the stream reads this connection, so it
needs no reader of its own and no locking.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from kombu import Connection, Consumer, Queue
from kombu.message import Message

from nameko_like import serialization
from nameko_like.amqp.connection import connect, make_connection
from nameko_like.rpc import wire

_log = logging.getLogger(__name__)

#: Longest single read while waiting, so a stream failed from elsewhere
#: (its request not delivered) is noticed without waiting out the timeout.
_READ_SLICE = 0.25


class StreamQueue:
    """An exclusive, auto-deleted queue bound to the RPC exchange with a
    fresh routing key (the request's ``reply_to``), consumed with acks.

    Args:
        config: the caller's config (``AMQP_URI``, ``rpc_exchange``, serializers).
        prefetch: items the broker may send before the caller takes them.
        on_reply: called with ``(body, headers, ack)`` for each reply.
    """

    def __init__(self, config: dict[str, Any], prefetch: int,
                 on_reply: Callable[[Any, dict[str, Any], Callable[[], None]], None]) -> None:
        self.routing_key = str(uuid.uuid4())
        self._on_reply = on_reply
        self._accept = serialization.content_types(serialization.setup(config).accept)
        # no heartbeats: nobody reads this connection while the caller is
        # busy between items, and a heartbeat it can't answer would close it
        self._connection: Connection | None = make_connection(config, heartbeat=False)
        try:
            connect(self._connection)
            channel = self._connection.channel()
            queue = Queue(f"rpc.stream-{self.routing_key}", exchange=wire.rpc_exchange(config),
                          routing_key=self.routing_key, durable=False, exclusive=True,
                          auto_delete=True)
            bound = queue(channel)
            bound.declare()
            channel.basic_qos(0, prefetch, False)
            Consumer(channel, queues=[bound], no_ack=False, auto_declare=False,
                     on_message=self._on_message).consume()
        except BaseException:
            self.close()
            raise

    def _on_message(self, message: Message) -> None:
        headers = message.headers or {}
        try:
            body = serialization.decode(message.body, message.content_type,
                                        message.content_encoding, self._accept, None)
        except Exception as exc:  # noqa: BLE001 - an unreadable item ends the stream
            body = exc
        self._on_reply(body, headers, message.ack)

    def wait(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """Read replies until ``done()``; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done():
            connection = self._connection
            if connection is None:
                return done()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            try:
                connection.drain_events(
                    timeout=_READ_SLICE if remaining is None else min(remaining, _READ_SLICE))
            except TimeoutError:
                continue
        return True

    def close(self) -> None:
        """Close the connection; the broker deletes the queue with it."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.release()
            except Exception as exc:  # noqa: BLE001 - closing a broken connection is best effort
                _log.debug("closing a stream's connection: %s", exc)
