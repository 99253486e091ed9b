"""RabbitMQ through py-amqp: the transport services run on.

Consuming and publishing use py-amqp's channel straight, without kombu's
``Consumer``/``Message``/``Producer`` layers, which cost more per message
than everything else done with it. Publishes are confirmed by the broker
later (``basic.ack``/``nack``/``return``), matched to their outcomes by
:class:`~nameko_like.amqp.confirms.ConfirmTracker`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

import amqp

from nameko_like.amqp.channel_errors import SentPublish
from nameko_like.amqp.confirms import ConfirmTracker
from nameko_like.amqp.encode import build_message, send_ack, send_publish
from nameko_like.amqp.outcome import PublishOutcome
from nameko_like.constants import (
    AMQP_SSL_CONFIG_KEY,
    DEFAULT_HEARTBEAT,
    HEARTBEAT_CONFIG_KEY,
    LOGIN_METHOD_CONFIG_KEY,
)
from nameko_like.protocols import DeliveredMessage

__all__ = ["Delivery", "PyAmqpTransport"]


class Delivery:
    """A message delivered by py-amqp, with the interface handlers use.

    ``body`` (bytes, as sent: still compressed if it was), ``properties``,
    ``headers``, ``content_type``, ``content_encoding``, ``delivery_info``,
    ``channel``, ``ack()`` and ``reject(requeue)``, as kombu's messages have
    them.
    """

    __slots__ = ("body", "channel", "content_encoding", "content_type", "delivery_info",
                 "delivery_tag", "headers", "properties")

    def __init__(self, raw: amqp.Message) -> None:
        properties: dict[str, Any] = raw.properties
        self.body: bytes = raw.body
        self.properties = properties
        self.headers: dict[str, Any] = properties.get("application_headers") or {}
        self.content_type: str | None = properties.get("content_type")
        self.content_encoding: str | None = properties.get("content_encoding")
        self.delivery_info: dict[str, Any] = raw.delivery_info
        self.delivery_tag: int = raw.delivery_info["delivery_tag"]
        self.channel: amqp.Channel = raw.channel

    def ack(self) -> None:
        """Acknowledge the message."""
        send_ack(self.channel, self.delivery_tag)

    def reject(self, requeue: bool = False) -> None:
        """Reject the message, back to its queue if ``requeue``."""
        self.channel.basic_reject(self.delivery_tag, requeue)


class PyAmqpTransport:
    """The :class:`~nameko_like.protocols.Transport` for ``amqp://`` (and ``amqps://``)."""

    in_process = False
    confirms = True

    def connection_params(self, uri: str, config: dict[str, Any],
                          transport_options: dict[str, Any],
                          heartbeat: bool) -> dict[str, Any]:
        """SSL, login method, heartbeat and a short connect time-out from ``config``."""
        params: dict[str, Any] = {"hostname": uri, "transport_options": transport_options}
        ssl = config.get(AMQP_SSL_CONFIG_KEY)
        if ssl:
            # a copy: kombu fills in server_hostname in the dict it is given
            params["ssl"] = dict(ssl) if isinstance(ssl, dict) else ssl
        login_method = config.get(LOGIN_METHOD_CONFIG_KEY)
        if login_method:
            params["login_method"] = login_method
        if heartbeat:
            params["heartbeat"] = config.get(HEARTBEAT_CONFIG_KEY, DEFAULT_HEARTBEAT)
        # Fail a connect attempt within seconds so reconnect loops stay lively.
        transport_options.setdefault("connect_timeout", 5)
        return params

    def verify(self, config: dict[str, Any], timeout: float) -> None:
        """Connect once (on each node of a cluster, or twice) to check the broker answers."""
        from nameko_like.amqp.broker_uri import explain_connect_failure
        from nameko_like.amqp.connection import amqp_uri_from_config, make_connection

        uri = amqp_uri_from_config(config)
        connection = make_connection(config, heartbeat=False)
        try:
            # twice on a single broker, as before; once each on a cluster's nodes
            connection.ensure_connection(max_retries=max(len(connection.alt), 2) - 1,
                                         timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - any failure to connect gets the hint below
            # the message tells a refused login, a missing vhost and a closed port apart
            raise ConnectionError(explain_connect_failure(
                exc, uri, connection.userid, connection.virtual_host)) from None
        finally:
            connection.release()

    def prepare_consumer_channel(self, channel: amqp.Channel, prefetch_count: int) -> None:
        """Bodies stay bytes (the serializer decodes them by content type); set prefetch."""
        channel.auto_decode = False
        channel.basic_qos(0, prefetch_count, False)

    def consume(self, channel: amqp.Channel, queue_name: str,
                on_message: Callable[[DeliveredMessage], None], *, no_ack: bool = False,
                nowait: bool = False, on_cancel: Callable[[str], None] | None = None) -> str:
        """``basic.consume`` with each raw message wrapped as a :class:`Delivery`."""
        def on_delivery(raw: amqp.Message) -> None:
            on_message(Delivery(raw))

        tag = f"{queue_name}-{uuid.uuid4().hex}"
        channel.auto_decode = False
        channel.basic_consume(queue_name, consumer_tag=tag, callback=on_delivery, no_ack=no_ack,
                              nowait=nowait, on_cancel=on_cancel)
        return tag

    def cancel(self, channel: amqp.Channel, consumer_tag: str) -> None:
        """``basic.cancel`` with nowait: the cancel-ok would have to be read from a
        socket the reader owns; deliveries already on their way are requeued."""
        channel.basic_cancel(consumer_tag, nowait=True)

    def wrap(self, raw: amqp.Message) -> Delivery:
        """A py-amqp message as a :class:`Delivery`."""
        return Delivery(raw)

    def declare(self, config: dict[str, Any], channel: amqp.Channel,
                entities: Iterable[Any]) -> None:
        """Declare on a short-lived connection of its own.

        Declaring waits for the broker's answer, which would mean reading the
        socket a reader greenthread owns. It is rare: once per entity and
        publish connection.
        """
        from nameko_like.amqp.connection import make_connection

        with make_connection(config, heartbeat=False) as connection:
            declaring = connection.channel()
            for entity in entities:
                entity(declaring).declare()

    def publish(self, channel: amqp.Channel, confirms: ConfirmTracker, body: Any, exchange: str,
                routing_key: str, mandatory: bool, properties: dict[str, Any]) -> PublishOutcome:
        """Encode and write the publish; ``confirms`` settles it when the broker answers."""
        message = build_message(body, **properties)
        send_publish(channel, message, exchange, routing_key, mandatory)
        # Tracked only once written: a body that fails to serialize must not
        # take a delivery tag. Nothing can be confirmed between the write and
        # this line, as they don't yield.
        return confirms.sent(SentPublish(message, exchange, routing_key, mandatory))
