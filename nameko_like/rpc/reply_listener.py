"""ReplyListener: receives the replies to a container's outgoing RPC calls."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from kombu import Queue

from nameko_like.amqp.publish_channel import PublishChannel, get_publish_channel
from nameko_like.exceptions import RpcConnectionError
from nameko_like.extensions import SharedExtension
from nameko_like.messaging import QueueConsumer
from nameko_like.protocols import DeliveredMessage
from nameko_like.rpc import wire

if TYPE_CHECKING:
    from nameko_like.rpc.client import RpcReply

_log = logging.getLogger(__name__)


class ReplyListener(SharedExtension):
    """Consumes the container's reply queue ``rpc.reply-<service>-<uuid>``.

    Calls waiting when the consumer connection drops fail at once with
    ``RpcConnectionError``: their replies may have been lost with the
    connection, and a clear error beats waiting forever (Nameko #504).
    """

    queue_consumer = QueueConsumer()

    def __init__(self) -> None:
        self.queue: Queue | None = None
        self.routing_key: str | None = None
        self._pending: dict[str, RpcReply] = {}
        super().__init__()

    def setup(self) -> None:
        """Create the reply queue's identity and register it for consuming."""
        config = self.container.config
        self.queue, self.routing_key = wire.reply_queue(config, self.container.service_name)
        # Replies need no worker, and the workers waiting for them can only
        # finish once they arrive: never hold them back for a free worker.
        self.queue_consumer.register_provider(self, needs_worker=False)
        self.queue_consumer.on_connection_lost(self._fail_pending)

    def stop(self) -> None:
        """Stop consuming replies."""
        self.queue_consumer.unregister_provider(self)

    @property
    def config(self) -> dict[str, Any]:
        """The container's config."""
        return self.container.config

    @property
    def publish_channel(self) -> PublishChannel:
        """The process's shared publish channel for this broker."""
        return get_publish_channel(self.container.config)

    def register(self, correlation_id: str, reply: RpcReply) -> None:
        """Expect a reply for ``correlation_id``."""
        self._pending[correlation_id] = reply

    def unregister(self, correlation_id: str) -> None:
        """Stop expecting a reply for ``correlation_id``."""
        self._pending.pop(correlation_id, None)

    def wait(self, reply: RpcReply, timeout: float | None) -> bool:
        """Wait for ``reply``; False on timeout."""
        return reply._ready.wait(timeout)

    def handle_message(self, message: DeliveredMessage) -> None:
        """Hand a reply to the call waiting for it."""
        self.queue_consumer.ack(message)
        correlation_id = message.properties.get("correlation_id")
        # only str ids are registered; a malformed one finds nothing, as any unknown id
        reply = self._pending.pop(correlation_id, None) if isinstance(correlation_id, str) else None
        if reply is None:
            _log.debug("reply for unknown or expired call %s dropped", correlation_id)
            return
        try:
            reply.set_body(self.queue_consumer.decode(message))
        except Exception as exc:  # noqa: BLE001 - a reply we can't read still ends the call
            reply.fail(RpcConnectionError(f"unreadable reply: {exc}"))

    def _fail_pending(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for reply in pending.values():
            reply.fail(RpcConnectionError(f"connection lost while waiting for the reply: {exc}"))
