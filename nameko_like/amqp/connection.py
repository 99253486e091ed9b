"""Building kombu connections from a nameko_like config.

``AMQP_URI`` may name several brokers, the nodes of a RabbitMQ cluster, as
kombu's failover alternatives: ``amqp://node1;amqp://node2;amqp://node3``.
Each new connection starts at a random one of them (so a service's
connections spread over the nodes) and :func:`connect` tries each in turn
until one answers.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, TypeAlias

import amqp
from kombu import Connection, Exchange, Queue

from nameko_like.amqp.broker_uri import (
    ALTERNATIVES_SEPARATOR,
    alternatives,
    check_transport,
    sanitize_uri,
)
from nameko_like.amqp.transport import transport_for
from nameko_like.constants import (
    AMQP_URI_CONFIG_KEY,
    DEFAULT_AMQP_URI,
    TRANSPORT_OPTIONS_CONFIG_KEY,
)

if TYPE_CHECKING:
    # Only for the type: importing kombu's virtual transport binds its
    # time.sleep at import, so imported before eventlet's monkey patch (a
    # script that patches in __main__) it would block the hub while polling
    # memory://.
    from kombu.transport.virtual import Channel as VirtualChannel

#: A channel of a kombu connection: py-amqp's on amqp://, kombu's virtual
#: channel on memory:// (whose deliveries are kombu Messages).
BrokerChannel: TypeAlias = "amqp.Channel | VirtualChannel"

#: What publishers and consumers declare on the broker.
Declarable: TypeAlias = Exchange | Queue

def amqp_uri_from_config(config: dict[str, Any]) -> str:
    """The broker URI of ``config`` (the local RabbitMQ when unset)."""
    uri: str = config.get(AMQP_URI_CONFIG_KEY) or DEFAULT_AMQP_URI
    return uri


def connection_params(config: dict[str, Any], heartbeat: bool = True) -> dict[str, Any]:
    """Keyword arguments for ``kombu.Connection`` taken from ``config``.

    ``heartbeat`` is left out where nobody would send heartbeats (a client
    that only talks while the user calls it). What else goes in is the
    transport's business (SSL and login for RabbitMQ, a polling interval
    in-process).
    """
    uri = check_transport(amqp_uri_from_config(config))
    transport_options = dict(config.get(TRANSPORT_OPTIONS_CONFIG_KEY) or {})
    return transport_for(uri).connection_params(uri, config, transport_options, heartbeat)


def make_connection(config: dict[str, Any], heartbeat: bool = True) -> Connection:
    """A new, not yet connected, kombu connection for ``config``.

    With failover alternatives it starts at a random one and goes round
    the others from there (kombu's round-robin), so the connections of a
    service spread over a cluster's nodes and each node is tried.
    """
    params = connection_params(config, heartbeat=heartbeat)
    hosts = alternatives(params["hostname"])
    if len(hosts) > 1:
        start = random.randrange(len(hosts))
        params["hostname"] = ALTERNATIVES_SEPARATOR.join(hosts[start:] + hosts[:start])
    return Connection(**params)


def connect(connection: Connection) -> None:
    """Connect ``connection``, trying each failover alternative once.

    Raises what the last attempt raised (the transport's own connection
    error, as ``Connection.connect`` does), at once: whoever calls decides
    when to try again.
    """
    # max_retries counts the attempts after the first; kombu moves on to
    # the next alternative after each failure and sleeps only once it has
    # been round them all, which the last attempt never reaches
    connection.ensure_connection(max_retries=max(len(connection.alt), 1) - 1,
                                 reraise_as_library_errors=False)


def safe_uri(config: dict[str, Any]) -> str:
    """The broker URI of ``config`` with its passwords masked, for messages."""
    return sanitize_uri(amqp_uri_from_config(config))


#: What tells two connections apart: URI, SSL, login method, transport
#: options, heartbeat (the parts that are not hashable as given, repr'd).
ConnectionKey = tuple[str, str, str | None, str, float | None]


def connection_key(config: dict[str, Any]) -> ConnectionKey:
    """A hashable key of everything that makes two connections differ."""
    params = connection_params(config)
    return (
        params["hostname"],
        repr(params.get("ssl")),
        params.get("login_method"),
        repr(sorted(params["transport_options"].items())),
        params.get("heartbeat"),
    )


def verify_amqp_uri(config: dict[str, Any], timeout: float = 5) -> None:
    """Connect once to check the broker is reachable; raise ``ConnectionError`` if not.

    The error names the URI (password masked), the cause (login refused,
    no such vhost, nothing listening) and its fix. A transport nameko_like
    cannot use is a ``ConfigurationError``, raised before connecting.
    """
    uri = check_transport(amqp_uri_from_config(config))
    transport_for(uri).verify(config, timeout)
