"""``Publisher``: a dependency that publishes messages to an exchange or queue."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kombu import Exchange, Queue

from nameko_like import instrumentation, serialization
from nameko_like.amqp.connection import Declarable, make_connection
from nameko_like.amqp.publish import Publisher as _AmqpPublisher
from nameko_like.extensions import DependencyProvider
from nameko_like.messaging.headers import HeaderEncoder

if TYPE_CHECKING:
    from nameko_like.worker_context import WorkerContext


class Publisher(DependencyProvider, HeaderEncoder):
    """Injects a ``publish(payload, **kwargs)`` function.

    Messages carry the worker's context data as headers and are confirmed by
    the broker before ``publish`` returns.

    Args:
        exchange: exchange to publish to (declared on first use).
        queue: a queue to declare (and publish to, if no exchange is given).
        declare: more exchanges or queues to declare.
        **options: publisher options: delivery_mode, priority, expiration,
            compression, serializer, retry, retry_policy, use_confirms,
            mandatory.
    """

    def __init__(self, exchange: Exchange | None = None, queue: Queue | None = None,
                 declare: list[Declarable] | None = None, **options: Any) -> None:
        self.exchange = exchange
        self.queue = queue
        self.declare = list(declare or [])
        self.options = options
        self.publisher: _AmqpPublisher | None = None

    def setup(self) -> None:
        """Build the publisher from the container config."""
        declare = list(self.declare)
        if self.exchange is not None:
            declare.append(self.exchange)
        if self.queue is not None:
            declare.append(self.queue)
            queue_exchange = self.queue.exchange
            if self.exchange is None and queue_exchange is not None and queue_exchange.name:
                self.exchange = queue_exchange
        config = self.container.config
        options = dict(self.options)
        options.setdefault("serializer", serialization.setup(config).serializer)
        # Declared now, as Nameko does, so that queues exist (and collect
        # messages) from start-up even if nothing is ever published.
        _declare_now(config, declare)
        self.publisher = _AmqpPublisher(config=config, declare=declare,
                                        pool=self.container.publish_pool, **options)

    def get_dependency(self, worker_ctx: WorkerContext) -> Callable[..., None]:
        """A ``publish`` function bound to this worker's context data."""
        headers = self.get_message_headers(worker_ctx)
        exchange = self.exchange.name if self.exchange is not None else ""
        default_key = self.queue.name if (self.queue is not None and not exchange) else ""
        publisher = self.publisher
        assert publisher is not None

        def publish(payload: Any, **kwargs: Any) -> None:
            kwargs.setdefault("exchange", exchange)
            kwargs.setdefault("routing_key", default_key)
            extra = kwargs.pop("extra_headers", None) or {}
            merged = dict(headers)
            merged.update(extra)
            merged.update(kwargs.pop("headers", None) or {})
            with (instrumentation.publishing(kwargs["exchange"], kwargs["routing_key"], merged)
                  if instrumentation.observers else instrumentation.UNOBSERVED):
                publisher.publish(payload, headers=merged, **kwargs)

        return publish

    def get_async_dependency(self, worker_ctx: WorkerContext) -> Any:
        """For ``async def`` methods: ``await self.publish(...)`` (asyncio hub)."""
        from nameko_like.asyncio_support import AwaitingProxy

        return AwaitingProxy(self.get_dependency(worker_ctx))


def _declare_now(config: dict[str, Any], entities: list[Declarable]) -> None:
    """Declare exchanges and queues (with their bindings) on a short-lived connection."""
    if not entities:
        return
    with make_connection(config, heartbeat=False) as connection:
        channel = connection.channel()
        for entity in entities:
            entity(channel).declare()
