"""RpcReplyRouter: hands each RPC reply to the call waiting for it.

One router per reply queue, whoever consumes that queue: a container's
:class:`~nameko_like.rpc.reply_listener.ReplyListener` feeds its router the
replies its ``QueueConsumer`` receives; a standalone proxy's
:class:`~nameko_like.standalone.rpc.StandaloneReplyRouter` is a router that
consumes its reply queue on its own connection. RPC proxies send their
calls through the router (it is the ``ReplyRouter`` seam of
:mod:`nameko_like.protocols`) and each call's
:class:`~nameko_like.rpc.client.RpcReply` waits through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nameko_like.amqp.publish_channel import PublishChannel
from nameko_like.exceptions import RpcConnectionError
from nameko_like.protocols import DeliveredMessage
from nameko_like.rpc.reply_ready import ReplyReady

if TYPE_CHECKING:
    from nameko_like.amqp.publish_pool import PublishPool
    from nameko_like.rpc.client import RpcReply

_log = logging.getLogger(__name__)


class RpcReplyRouter:
    """Matches reply messages to the calls waiting for them, by correlation id.

    Args:
        config: the caller's config.
        routing_key: routing key of the reply queue (the requests'
            ``reply_to``); the owner may set it later, once the queue exists.
        pool: the publish pool requests go through (a container's); a
            router with a connection of its own overrides ``publish_channel``.
    """

    def __init__(self, config: dict[str, Any], routing_key: str | None = None,
                 pool: PublishPool | None = None) -> None:
        self.config = config
        self.routing_key = routing_key
        self.pool = pool
        self._pending: dict[str, RpcReply] = {}

    @property
    def publish_channel(self) -> PublishChannel:
        """The channel requests are published on: the pool's for ``config``."""
        assert self.pool is not None, "a router without a pool has a channel of its own"
        return self.pool.get(self.config)

    @property
    def waiting(self) -> int:
        """How many calls are waiting for their reply."""
        return len(self._pending)

    def register(self, correlation_id: str, reply: RpcReply) -> None:
        """Expect a reply for ``correlation_id``; it goes to ``reply``."""
        self._pending[correlation_id] = reply

    def unregister(self, correlation_id: str) -> None:
        """Stop expecting a reply for ``correlation_id``."""
        self._pending.pop(correlation_id, None)

    def wait_until(self, ready: ReplyReady, timeout: float | None) -> bool:
        """Block until ``ready`` (a reply's) is set, or ``timeout``; False on timeout.

        Here the replies are routed by another thread (the container's
        consumer), which sets ``ready``.
        """
        return ready.wait(timeout)

    def route(self, message: DeliveredMessage,
              decode: Callable[[DeliveredMessage], Any]) -> None:
        """Hand a reply message, decoded with ``decode``, to the call waiting for it.

        A reply nobody waits for (the call timed out, or the id is unknown)
        is dropped; one that can't be decoded still ends its call, with
        ``RpcConnectionError``.
        """
        correlation_id = message.properties.get("correlation_id")
        # only str ids are registered; a malformed one finds nothing, as any unknown id
        reply = self._pending.pop(correlation_id, None) if isinstance(correlation_id, str) else None
        if reply is None:
            _log.debug("reply for unknown or expired call %s dropped", correlation_id)
            return
        try:
            reply.set_body(decode(message))
        except Exception as exc:  # noqa: BLE001 - a reply we can't read still ends the call
            reply.fail(RpcConnectionError(f"unreadable reply: {exc}"))

    def fail_pending(self, error: RpcConnectionError) -> None:
        """Fail every call waiting for a reply with ``error`` (their replies were lost)."""
        pending, self._pending = self._pending, {}
        for reply in pending.values():
            reply.fail(error)
