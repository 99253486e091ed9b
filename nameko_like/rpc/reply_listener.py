"""ReplyListener: receives the replies to a container's outgoing RPC calls."""

from __future__ import annotations

import logging

from kombu import Queue

from nameko_like.exceptions import RpcConnectionError
from nameko_like.extensions import SharedExtension
from nameko_like.messaging import QueueConsumer
from nameko_like.protocols import DeliveredMessage
from nameko_like.rpc import wire
from nameko_like.rpc.reply_router import RpcReplyRouter

_log = logging.getLogger(__name__)


class ReplyListener(SharedExtension):
    """Consumes the container's reply queue ``rpc.reply-<service>-<uuid>``.

    Each reply goes to ``router``, the container's
    :class:`~nameko_like.rpc.reply_router.RpcReplyRouter`, which the
    container's RPC proxies send their calls through. Calls waiting when the
    consumer connection drops fail at once with ``RpcConnectionError``:
    their replies may have been lost with the connection, and a clear error
    beats waiting forever (Nameko #504).
    """

    queue_consumer = QueueConsumer()

    def __init__(self) -> None:
        self.queue: Queue | None = None
        self.routing_key: str | None = None
        self._router: RpcReplyRouter | None = None
        super().__init__()

    def setup(self) -> None:
        """Create the reply queue's identity and register it for consuming."""
        config = self.container.config
        self.queue, self.routing_key = wire.reply_queue(config, self.container.service_name)
        self._router = RpcReplyRouter(config, self.routing_key, self.container.publish_pool)
        # Replies need no worker, and the workers waiting for them can only
        # finish once they arrive: never hold them back for a free worker.
        self.queue_consumer.register_provider(self, needs_worker=False)
        self.queue_consumer.on_connection_lost(self._fail_pending)

    def stop(self) -> None:
        """Stop consuming replies."""
        self.queue_consumer.unregister_provider(self)

    @property
    def router(self) -> RpcReplyRouter:
        """The router the container's calls go through (set up by ``setup()``)."""
        router = self._router
        assert router is not None, "a ReplyListener routes replies once set up"
        return router

    def handle_message(self, message: DeliveredMessage) -> None:
        """Hand a reply to the call waiting for it."""
        self.queue_consumer.ack(message)
        self.router.route(message, self.queue_consumer.decode)

    def _fail_pending(self, exc: BaseException) -> None:
        self.router.fail_pending(
            RpcConnectionError(f"connection lost while waiting for the reply: {exc}"))
