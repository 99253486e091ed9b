"""Context data in AMQP message headers, as Nameko writes and reads it.

A worker's context data (call id stack, language, user and the like) goes
with every message it sends: ``encode_context_headers`` turns it into
``nameko.<key>`` headers, ``decode_context_headers`` reads it back from a
delivered message. The extensions use them through the ``HeaderEncoder``
and ``HeaderDecoder`` mixins of :mod:`nameko_like.messaging`, which also
re-exports both functions.
"""

from __future__ import annotations

from typing import Any

from nameko_like.amqp import dead_letter as dead_letters
from nameko_like.constants import HEADER_PREFIX
from nameko_like.tracing import TRACE_CONTEXT_HEADERS

_PREFIX = HEADER_PREFIX + "."


def encode_context_headers(context_data: dict[str, Any]) -> dict[str, Any]:
    """AMQP headers (``nameko.<key>``) carrying ``context_data``; None values dropped."""
    return {_PREFIX + key: value for key, value in context_data.items() if value is not None}


#: Headers nameko_like adds to messages it moves aside or requeues, those
#: RabbitMQ adds (quorum queues' delivery count, dead-lettering history) and
#: kombu's compression header: bookkeeping of the transport, not context.
_TRANSPORT_HEADERS = frozenset({
    dead_letters.REASON_HEADER, dead_letters.TIME_HEADER, dead_letters.ORIGINAL_EXCHANGE_HEADER,
    dead_letters.ORIGINAL_ROUTING_KEY_HEADER, dead_letters.REDELIVERY_HEADER, "compression",
    "x-delivery-count", "x-death", "x-first-death-exchange", "x-first-death-queue",
    "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue",
    "x-last-death-reason",
})

#: Headers never read as context data: the above and trace context.
_NOT_CONTEXT_DATA = _TRANSPORT_HEADERS | TRACE_CONTEXT_HEADERS | frozenset(
    _PREFIX + name for name in TRACE_CONTEXT_HEADERS)


def decode_context_headers(headers: dict[str, Any] | None) -> dict[str, Any]:
    """Context data from a message's headers, as Nameko reads them.

    ``nameko.<key>`` headers give ``<key>``; any other header is context
    data under its own name (a ``x-trace-id`` set by a publisher reaches the
    handler), except the transport's own bookkeeping headers and trace
    context (``traceparent``, ``tracestate``, ``baggage``, plain or
    ``nameko.``-prefixed): a worker passes on its *current* trace context
    (see :mod:`nameko_like.tracing`), never the one it was called with.
    """
    if not headers:
        return {}
    return {
        (key[len(_PREFIX):] if key.startswith(_PREFIX) else key): value
        for key, value in headers.items() if key not in _NOT_CONTEXT_DATA
    }
