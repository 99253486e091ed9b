"""Publish-subscribe events: ``EventDispatcher`` and ``@event_handler``.

On the wire, as in Nameko 2.x: a service dispatches to the durable topic
exchange ``<service>.events`` with the event type as routing key; each
handler consumes a queue bound to it, named by its handler type:

* ``SERVICE_POOL`` (default): ``evt-<source>-<type>--<service>.<method>``,
  one queue per handling service, shared by its instances: each event is
  handled once per service;
* ``SINGLETON``: ``evt-<source>-<type>``, one queue for everyone: each event
  is handled once in the whole cluster;
* ``BROADCAST``: ``evt-<source>-<type>--<service>.<method>-<identifier>``,
  one queue per instance: every instance handles every event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from kombu import Exchange, Queue

from nameko_like import instrumentation, payload_filters, serialization
from nameko_like.amqp.publish import Publisher as AmqpPublisher
from nameko_like.amqp.queue_types import owned_queue_options
from nameko_like.constants import (
    AUTO_DELETE_EVENT_EXCHANGES_CONFIG_KEY,
    DECLARE_EVENT_EXCHANGES_CONFIG_KEY,
)
from nameko_like.exceptions import ConfigurationError
from nameko_like.extensions import DependencyProvider
from nameko_like.messaging import Consumer, HeaderEncoder

if TYPE_CHECKING:
    from nameko_like.amqp.publish_pool import PublishPool
    from nameko_like.protocols import DeliveredMessage
    from nameko_like.protocols import ContainerInterface
    from nameko_like.worker_context import WorkerContext

SERVICE_POOL = "service_pool"
SINGLETON = "singleton"
BROADCAST = "broadcast"

_HandlerT = TypeVar("_HandlerT", bound="EventHandler")

#: Event types whose publish options an EventDispatcher keeps worked out.
_KNOWN_EVENT_TYPES = 256


class EventHandlerConfigurationError(ConfigurationError):
    """An ``@event_handler`` was declared with options that can't work together."""


def get_event_exchange(service_name: str, config: dict[str, Any] | None = None) -> Exchange:
    """The exchange ``service_name`` dispatches its events to."""
    auto_delete = bool((config or {}).get(AUTO_DELETE_EVENT_EXCHANGES_CONFIG_KEY, False))
    return Exchange(f"{service_name}.events", type="topic", durable=True,
                    auto_delete=auto_delete, delivery_mode=2)


def event_publisher(config: dict[str, Any], pool: PublishPool | None = None,
                    **options: Any) -> AmqpPublisher:
    """A Publisher set up to dispatch events with ``config``'s serializer,
    through ``pool`` (its own pool if None: see ``Publisher``)."""
    options.setdefault("serializer", serialization.setup(config).serializer)
    return AmqpPublisher(config=config, pool=pool, **options)


def dispatch_options(config: dict[str, Any], service_name: str, event_type: str) -> dict[str, Any]:
    """Publish keywords for one event of ``service_name``."""
    exchange = get_event_exchange(service_name, config)
    declare = (exchange,) if config.get(DECLARE_EVENT_EXCHANGES_CONFIG_KEY, True) else ()
    return {"exchange": exchange.name, "routing_key": event_type, "declare": declare}


class EventDispatcher(DependencyProvider, HeaderEncoder):
    """Injects ``dispatch(event_type, event_data)`` for this service's events.

    ``dispatch`` returns once the broker has confirmed the event, so an
    event whose dispatch returned is not lost. Publisher options (e.g.
    ``delivery_mode``, ``priority``, ``expiration``) may be given here or
    per call.
    """

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.publisher: AmqpPublisher | None = None
        #: dispatch_options by event type: the exchange is the same every time
        self._dispatch_options: dict[str, dict[str, Any]] = {}

    def setup(self) -> None:
        """Build the publisher from the container config."""
        self._dispatch_options = {}
        self.publisher = event_publisher(self.container.config,
                                         pool=self.container.publish_pool, **self.options)

    def get_dependency(self, worker_ctx: WorkerContext) -> Callable[..., None]:
        """A ``dispatch`` function carrying the worker's context data."""
        headers = self.get_message_headers(worker_ctx)
        config = self.container.config
        service_name = self.container.service_name
        publisher = self.publisher
        assert publisher is not None
        known = self._dispatch_options

        def dispatch(event_type: str, event_data: Any, **kwargs: Any) -> None:
            template = known.get(event_type)
            if template is None:
                if len(known) >= _KNOWN_EVENT_TYPES:
                    known.clear()  # event types made up on the fly: stay bounded
                template = known[event_type] = dispatch_options(config, service_name,
                                                                event_type)
            options = dict(template)
            options.update(kwargs)
            merged = dict(headers)
            merged.update(options.pop("headers", None) or {})
            with (instrumentation.publishing(options["exchange"], options["routing_key"], merged)
                  if instrumentation.observers else instrumentation.UNOBSERVED):
                publisher.publish(event_data, headers=merged, **options)

        return dispatch

    def get_async_dependency(self, worker_ctx: WorkerContext) -> Any:
        """For ``async def`` methods: ``await self.dispatch(...)`` (asyncio hub)."""
        from nameko_like.asyncio_support import AwaitingProxy

        return AwaitingProxy(self.get_dependency(worker_ctx))


class EventHandler(Consumer):
    """Runs the decorated method with the payload of each matching event.

    Args:
        source_service: name of the service dispatching the events.
        event_type: the event type to handle.
        handler_type: ``SERVICE_POOL``, ``SINGLETON`` or ``BROADCAST``.
        reliable_delivery: keep events in a durable queue while no handler
            is running; if False the queue is deleted with its last consumer.
        requeue_on_error: requeue an event whose handler raised (bounded by
            ``MAX_REDELIVERIES``, then dead-lettered) instead of dropping it.
        broadcast_identifier: distinguishes the queues of BROADCAST
            handlers; a fresh uuid per instance by default. Give a stable one
            to combine BROADCAST with ``reliable_delivery``.
        retry: a :class:`~nameko_like.retries.Retry`: run the handler again,
            after a delay, when it raises one of its exceptions.
        payload_filter: handle only some events: a predicate on the payload,
            or a dict of expected field values
            (:mod:`nameko_like.payload_filters`); the others are acknowledged
            and counted, never handled.
    """

    def __init__(self, source_service: str, event_type: str, handler_type: str = SERVICE_POOL,
                 reliable_delivery: bool = True, requeue_on_error: bool = False,
                 payload_filter: payload_filters.PayloadFilter | None = None,
                 **kwargs: Any) -> None:
        if handler_type not in (SERVICE_POOL, SINGLETON, BROADCAST):
            raise EventHandlerConfigurationError(f"unknown handler_type {handler_type!r}")
        self.payload_filter = payload_filters.as_predicate(payload_filter)
        self.source_service = source_service
        self.event_type = event_type
        self.handler_type = handler_type
        self.reliable_delivery = reliable_delivery
        # The queue's name needs the service name: it is built in setup(),
        # once the handler is bound (Nameko's Consumer takes it later too).
        super().__init__(
            queue=None,  # type: ignore[arg-type]
            requeue_on_error=requeue_on_error, **kwargs,
        )

    @property
    def broadcast_identifier(self) -> str:
        """The part that makes each BROADCAST instance's queue its own."""
        if not hasattr(self, "_broadcast_identifier"):
            self._broadcast_identifier = uuid.uuid4().hex
        return self._broadcast_identifier

    def _default_identifier(self) -> bool:
        return type(self).broadcast_identifier is EventHandler.broadcast_identifier

    def bind(  # type: ignore[override]  # Nameko's signature, as Entrypoint.bind
        self: _HandlerT, container: ContainerInterface, method_name: str
    ) -> _HandlerT:
        """Bind to ``container``; refuse a configuration that can't work.

        Checked here, while the container is being built, as in Nameko.
        """
        broadcast = self.handler_type == BROADCAST
        if broadcast and self.reliable_delivery and self._default_identifier():
            raise EventHandlerConfigurationError(
                f"{method_name}: BROADCAST with reliable_delivery needs a stable "
                "broadcast_identifier (override it in a subclass), or reliable_delivery=False"
            )
        return super().bind(container, method_name)

    def setup(self) -> None:
        """Declare this handler's queue and start consuming it with the container."""
        service_name = self.container.service_name
        prefix = f"evt-{self.source_service}-{self.event_type}"
        if self.handler_type == SERVICE_POOL:
            name = f"{prefix}--{service_name}.{self.method_name}"
        elif self.handler_type == SINGLETON:
            name = prefix
        else:
            name = f"{prefix}--{service_name}.{self.method_name}-{self.broadcast_identifier}"
        exchange = get_event_exchange(self.source_service, self.container.config)
        # As Nameko: an unreliable BROADCAST queue belongs to its connection
        # alone (exclusive); other unreliable queues go with their consumer.
        # (QUEUE_TYPE: quorum makes the reliable ones quorum queues)
        self.queue = Queue(name, exchange=exchange, routing_key=self.event_type,
                           **owned_queue_options(
                               self.container.config, service_name,
                               auto_delete=not self.reliable_delivery,
                               exclusive=self.handler_type == BROADCAST
                               and not self.reliable_delivery))
        super().setup()

    def spawn_for(self, message: DeliveredMessage, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> None:
        """Run a worker for the event, unless its payload doesn't pass the filter."""
        accepts = self.payload_filter
        if accepts is not None:
            try:
                passes = accepts(args[0])
            except Exception as exc:  # noqa: BLE001 - a filter's bug is its message's fate
                self.queue_consumer.dead_letter(
                    message, f"payload_filter raised {type(exc).__name__}: {exc}")
                return
            if not passes:
                self.queue_consumer.ack(message)
                if instrumentation.observers:
                    instrumentation.emit("event_filtered", self.container.service_name,
                                         self.method_name)
                return
        super().spawn_for(message, args, kwargs)


event_handler = EventHandler.decorator
