"""``HeaderEncoder`` and ``HeaderDecoder``: context data in message headers.

Mixins giving extensions Nameko's method names for carrying a worker's
context data (call id stack, language, user ...) across a message; the
encoding itself is :mod:`nameko_like.amqp.context_headers`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nameko_like.amqp.context_headers import decode_context_headers, encode_context_headers

if TYPE_CHECKING:
    from nameko_like.protocols import DeliveredMessage
    from nameko_like.worker_context import WorkerContext


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
