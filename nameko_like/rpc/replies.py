"""ReplyPublisher: sends RPC replies, and keeps trying while the broker is away."""

from __future__ import annotations

import logging
import time
from typing import Any

from kombu.exceptions import EncodeError

from nameko_like import serialization
from nameko_like._eventlet import eventlet
from nameko_like.amqp.outcome import PublishOutcome
from nameko_like.amqp.publish_pool import PublishPool
from nameko_like.exceptions import UnserializableValueError, serialize
from nameko_like.rpc import wire

_log = logging.getLogger(__name__)

#: How long a reply is retried while the broker can't be reached.
REPLY_RETRY_SECONDS = 30.0


class ReplyPublisher:
    """Publishes RPC replies through a publish pool (the container's)."""

    def __init__(self, config: dict[str, Any], pool: PublishPool) -> None:
        self.config = config
        self.pool = pool
        self.exchange = wire.rpc_exchange(config)
        self.serializer = serialization.setup(config).serializer
        #: seconds a streaming worker waits for a reply's confirm
        self.confirm_timeout = REPLY_RETRY_SECONDS

    def send(self, reply_to: str, correlation_id: Any, result: Any,
             error: dict[str, Any] | None,
             headers: dict[str, Any] | None = None) -> PublishOutcome | None:
        """Publish a reply; return its outcome, or None if it could not be sent.

        A result the serializer can't encode becomes an
        ``UnserializableValueError`` reply, so the caller never hangs.
        Connection failures are retried for ``REPLY_RETRY_SECONDS``; this
        never raises, so a failed reply can't kill the worker's container.
        """
        body = wire.reply_body(result, error)
        deadline = time.monotonic() + REPLY_RETRY_SECONDS
        delay = 0.2
        while True:
            try:
                return self._publish(reply_to, correlation_id, body, headers)
            except (EncodeError, TypeError, ValueError) as exc:
                _log.warning("result of call %s cannot be serialized: %s", correlation_id, exc)
                body = wire.reply_body(None, serialize(UnserializableValueError(result)))
            except Exception as exc:  # noqa: BLE001 - any publish failure: retry, then give up loudly
                if time.monotonic() + delay > deadline:
                    _log.error("giving up on the reply to %s after %.0fs: %s",
                               correlation_id, REPLY_RETRY_SECONDS, exc)
                    return None
                _log.warning("reply to %s not sent (%s); retrying in %.1fs",
                             correlation_id, exc, delay)
                eventlet.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _publish(self, reply_to: str, correlation_id: Any, body: dict[str, Any],
                 headers: dict[str, Any] | None) -> PublishOutcome:
        return self.pool.get(self.config).publish(
            body,
            exchange=self.exchange.name,
            routing_key=reply_to,
            correlation_id=correlation_id,
            headers=headers,
            serializer=self.serializer,
            delivery_mode=2,
            retry=True,
        )
