"""Which transport a broker URI names: the one place that asks.

:func:`transport_for` gives the :class:`~nameko_like.protocols.Transport`
for a URI: :class:`~nameko_like.amqp.pyamqp_transport.PyAmqpTransport` for
RabbitMQ, :class:`~nameko_like.amqp.memory_transport.MemoryTransport` for
kombu's in-process ``memory://``. Consumers, publishers, the standalone
clients and the embedded-mode shortcuts (leader locks, retry delays) use
what it gives and never look at the scheme themselves. A new transport is
one more module implementing the Protocol, and one more line here.
"""

from __future__ import annotations

from typing import Any

from nameko_like.protocols import Transport

__all__ = ["transport_for", "transport_of"]

_transports: dict[str, Transport] = {}


def transport_for(uri: str) -> Transport:
    """The transport for broker URI ``uri`` (already checked by ``check_transport``)."""
    kind = "memory" if uri.startswith("memory:") else "amqp"
    transport = _transports.get(kind)
    if transport is None:
        # imported on first use: each module imports the connection helpers,
        # which ask this one
        if kind == "memory":
            from nameko_like.amqp.memory_transport import MemoryTransport

            transport = MemoryTransport()
        else:
            from nameko_like.amqp.pyamqp_transport import PyAmqpTransport

            transport = PyAmqpTransport()
        _transports[kind] = transport
    return transport


def transport_of(config: dict[str, Any]) -> Transport:
    """The transport for the broker of ``config`` (``AMQP_URI``)."""
    from nameko_like.amqp.connection import amqp_uri_from_config

    return transport_for(amqp_uri_from_config(config))
