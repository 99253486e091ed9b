"""kombu's in-process ``memory://`` broker: embedded mode and the broker-free tests.

Everything lives in this one process: nothing is persistent, no other
process shares the queues, and the broker has no confirms: a publish is
settled when it returns. ``mandatory`` is checked against the in-memory
bindings before publishing, so an unroutable message fails as it would on
RabbitMQ. kombu delivers its own ``Message`` objects, already decompressed;
:class:`MemoryDelivery` presents them as handlers expect.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from kombu import Producer

from nameko_like.amqp.confirms import ConfirmTracker
from nameko_like.amqp.outcome import PublishOutcome, settled_outcome
from nameko_like.exceptions import UndeliverableMessage
from nameko_like.protocols import DeliveredMessage

if TYPE_CHECKING:
    from kombu.message import Message

__all__ = ["MEMORY_POLLING_INTERVAL", "MemoryDelivery", "MemoryTransport"]

#: The in-memory transport polls; a short interval keeps embedded-mode RPC
#: latency in the low milliseconds instead of kombu's default second.
MEMORY_POLLING_INTERVAL = 0.001


class MemoryDelivery:
    """A kombu ``Message`` of the memory broker, as handlers see deliveries.

    kombu has already inflated a compressed body: ``headers`` leave out its
    ``compression``, so nobody inflates it twice (and a copy of the message
    carries the body as it is).
    """

    __slots__ = ("headers", "raw")

    def __init__(self, raw: Message) -> None:
        self.raw = raw
        headers: dict[str, Any] = raw.headers or {}
        if "compression" in headers:
            headers = {key: value for key, value in headers.items() if key != "compression"}
        self.headers = headers

    @property
    def body(self) -> bytes | str:
        """The (inflated) body, still serialized."""
        body: bytes | str = self.raw.body
        return body

    @property
    def properties(self) -> dict[str, Any]:
        """AMQP basic properties."""
        properties: dict[str, Any] = self.raw.properties
        return properties

    @property
    def content_type(self) -> str | None:
        """MIME type of the body."""
        content_type: str | None = self.raw.content_type
        return content_type

    @property
    def content_encoding(self) -> str | None:
        """Character encoding of the body."""
        content_encoding: str | None = self.raw.content_encoding
        return content_encoding

    @property
    def delivery_info(self) -> dict[str, Any]:
        """``exchange``, ``routing_key``, ``redelivered``, ``delivery_tag``."""
        info: dict[str, Any] = self.raw.delivery_info
        payload: dict[str, Any] = getattr(self.raw, "_raw", None) or {}  # kombu's virtual one
        if "redelivered" not in info and payload.get("redelivered"):
            # kombu marks a message it put back (rejected with requeue) in
            # its payload only: say so where RabbitMQ does, so that its
            # redeliveries are counted (MAX_REDELIVERIES) as on RabbitMQ
            info["redelivered"] = True
        return info

    @property
    def channel(self) -> object:
        """The channel the message came on."""
        channel: object = self.raw.channel
        return channel

    def ack(self) -> None:
        """Acknowledge the message."""
        self.raw.ack()

    def reject(self, requeue: bool = False) -> None:
        """Reject the message, back to its queue if ``requeue``."""
        self.raw.reject(requeue=requeue)


class MemoryTransport:
    """The :class:`~nameko_like.protocols.Transport` for ``memory://``."""

    in_process = True
    confirms = False

    def __init__(self) -> None:
        # One kombu Producer per channel, made on its first publish.
        self._producers: weakref.WeakKeyDictionary[Any, Producer] = weakref.WeakKeyDictionary()

    def connection_params(self, uri: str, config: dict[str, Any],
                          transport_options: dict[str, Any],
                          heartbeat: bool) -> dict[str, Any]:
        """Only a short polling interval: no SSL, login nor heartbeats in-process."""
        transport_options.setdefault("polling_interval", MEMORY_POLLING_INTERVAL)
        return {"hostname": uri, "transport_options": transport_options}

    def verify(self, config: dict[str, Any], timeout: float) -> None:
        """Nothing to check: the broker is this process."""

    def prepare_consumer_channel(self, channel: Any, prefetch_count: int) -> None:
        """Set prefetch (bodies come decoded by kombu anyway)."""
        channel.basic_qos(0, prefetch_count, False)

    def consume(self, channel: Any, queue_name: str,
                on_message: Callable[[DeliveredMessage], None], *, no_ack: bool = False,
                nowait: bool = False, on_cancel: Callable[[str], None] | None = None) -> str:
        """kombu's ``basic_consume``, each Message wrapped as a :class:`MemoryDelivery`
        (the memory broker never cancels a consumer: ``on_cancel`` is not called)."""
        tag = f"{queue_name}-{uuid.uuid4().hex}"
        channel.basic_consume(queue_name, no_ack,
                              lambda message: on_message(MemoryDelivery(message)), tag)
        return tag

    def cancel(self, channel: Any, consumer_tag: str) -> None:
        """``basic_cancel`` (in-process: nothing to wait for)."""
        channel.basic_cancel(consumer_tag)

    def wrap(self, raw: Message) -> MemoryDelivery:
        """A kombu Message as a :class:`MemoryDelivery`."""
        return MemoryDelivery(raw)

    def declare(self, config: dict[str, Any], channel: Any, entities: Iterable[Any]) -> None:
        """Declare on ``channel`` itself: nobody else reads it."""
        for entity in entities:
            entity(channel).declare()

    def publish(self, channel: Any, confirms: ConfirmTracker, body: Any, exchange: str,
                routing_key: str, mandatory: bool, properties: dict[str, Any]) -> PublishOutcome:
        """Publish through kombu; settled at once (undeliverable if ``mandatory``
        and no queue is bound for it)."""
        if mandatory and exchange:
            try:
                routes = channel.typeof(exchange).lookup(channel.get_table(exchange), exchange,
                                                         routing_key, None)
            except KeyError:
                routes = []
            if not routes:
                return settled_outcome(UndeliverableMessage(
                    f"no queue bound to exchange {exchange!r} with routing key {routing_key!r}"))
        producer = self._producers.get(channel)
        if producer is None:
            producer = self._producers[channel] = Producer(channel, auto_declare=False)
        producer.publish(body, exchange=exchange, routing_key=routing_key, retry=False,
                         **properties)
        return settled_outcome()
