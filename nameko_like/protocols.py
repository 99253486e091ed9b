"""The typed seams between nameko_like's parts, as Protocols.

Extensions talk to their container, consumers hand messages to entrypoints,
RPC proxies hand calls to whatever receives their replies. Those objects are
duck-typed (tests pass fakes, the standalone proxies have no container, a
message comes from py-amqp or from kombu), so each seam is a Protocol here
rather than a concrete class. A reader (or mypy) can then follow a call from
a consumer through ``handle_message`` to ``container.spawn_worker``.

The seams:

:class:`ContainerInterface`
    What an extension sees of the container it is bound to
    (``Extension.container``): config, service identity, the shared
    extensions registry, ``spawn_worker`` and ``spawn_managed_thread``.
    :class:`~nameko_like.containers.ServiceContainer` is the implementation.

:class:`DeliveredMessage`
    A message as a consumer hands it to ``handle_message``: body, headers,
    properties, content type and encoding, delivery info, the channel it
    came on, ``ack()`` and ``reject(requeue)``. Both the py-amqp fast path's
    ``Delivery`` and kombu's ``Message`` (memory:// broker) fit it.

:class:`MessageProvider`
    What registers with a ``QueueConsumer``: a ``queue`` to consume and a
    ``handle_message(message)`` to call for each delivery (``@consume``
    entrypoints, the RPC consumer, the RPC reply listener).

:class:`Transport`
    How nameko_like talks to one kind of broker: py-amqp for RabbitMQ
    (:mod:`nameko_like.amqp.pyamqp_transport`) or kombu's in-process
    ``memory://`` (:mod:`nameko_like.amqp.memory_transport`), picked once by
    :func:`nameko_like.amqp.transport.transport_for`. Consuming, wrapping a
    delivery, declaring and publishing go through it; nothing else asks
    which broker it is on.

:class:`ReplyRouter`
    What an RPC proxy sends its calls through and receives replies from:
    an :class:`~nameko_like.rpc.reply_router.RpcReplyRouter` (a container's,
    fed by its ``ReplyListener``, or a standalone proxy's). It has the reply
    queue's ``routing_key``, a ``publish_channel``, ``register`` and
    ``unregister`` for pending replies, and ``wait_until`` for a reply's
    ``wait``.

Also the aliases :data:`ExcInfo` (what ``sys.exc_info()`` gives inside an
``except``) and :data:`ResultHandler` (the ``handle_result`` callback of
``spawn_worker``).

Only types live here: importing this module imports nothing else of
nameko_like at run time, so any module may import it without a cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from kombu import Queue

    from nameko_like.amqp.confirms import ConfirmTracker
    from nameko_like.amqp.outcome import PublishOutcome
    from nameko_like.amqp.publish_pool import PublishPool

    from nameko_like.amqp.publish_channel import PublishChannel
    from nameko_like.extensions import Entrypoint, Extension
    from nameko_like.rpc.client import RpcReply
    from nameko_like.rpc.reply_ready import ReplyReady
    from nameko_like.worker_context import WorkerContext

__all__ = [
    "ContainerInterface",
    "DeliveredMessage",
    "ExcInfo",
    "MessageProvider",
    "ReplyRouter",
    "ResultHandler",
    "Transport",
]

#: ``sys.exc_info()`` inside an ``except`` block (never the all-None triple).
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

#: ``handle_result(worker_ctx, result, exc_info)`` given to ``spawn_worker``:
#: called in the worker once the method returned (``exc_info`` None) or
#: raised; returns the ``(result, exc_info)`` the dependencies then see.
ResultHandler = Callable[
    ["WorkerContext", Any, ExcInfo | None],
    tuple[Any, ExcInfo | None],
]


class ContainerInterface(Protocol):
    """What an extension sees of its container (the type of ``Extension.container``).

    Properties rather than attributes so that read-only implementations
    (``ServiceContainer.running`` is a property) fit.
    """

    @property
    def service_cls(self) -> type[Any]:
        """The service class the container hosts."""

    @property
    def service_name(self) -> str:
        """The service's ``name``."""

    @property
    def config(self) -> dict[str, Any]:
        """The configuration shared by every extension of the container."""

    @property
    def max_workers(self) -> int:
        """How many workers may run at once."""

    @property
    def serializer(self) -> str:
        """Name of the serializer outgoing messages use (``SERIALIZER``)."""

    @property
    def accept(self) -> list[str]:
        """Serializer names incoming messages may use (``ACCEPT``)."""

    @property
    def shared_extensions(self) -> dict[object, Extension]:
        """The container's one instance per ``SharedExtension.sharing_key``."""

    @property
    def entrypoints(self) -> set[Entrypoint]:
        """The container's bound entrypoints."""

    @property
    def running(self) -> bool:
        """Whether the container has started and not yet died."""

    @property
    def publish_pool(self) -> PublishPool:
        """The publish connections the container's extensions publish through."""

    @property
    def free_worker_slots(self) -> int:
        """How many workers can be spawned now without waiting."""

    def wait_for_worker_slot(self, timeout: float = 0.5) -> bool:
        """Block until a worker could be spawned without waiting, or ``timeout``."""

    def spawn_worker(
        self,
        entrypoint: Entrypoint,
        args: Iterable[Any],
        kwargs: dict[str, Any],
        context_data: dict[str, Any] | None = None,
        handle_result: ResultHandler | None = None,
    ) -> WorkerContext:
        """Run ``entrypoint``'s method in a new worker; see ``ServiceContainer``."""

    def spawn_managed_thread(
        self, fn: Callable[[], object], identifier: str | None = None
    ) -> Any:
        """Run ``fn`` in a greenthread the container owns; returns it.

        The greenthread is eventlet's (which ships no type information).
        """

    def kill(self, exc_info: ExcInfo | None = None) -> None:
        """Stop at once; ``wait()`` callers get the error in ``exc_info``."""


class DeliveredMessage(Protocol):
    """A message a consumer hands to ``handle_message``.

    Read-only properties, as both the py-amqp ``Delivery`` and kombu's
    ``Message`` expose them.
    """

    @property
    def body(self) -> bytes | str:
        """The raw (encoded, possibly compressed) body."""

    @property
    def headers(self) -> dict[str, Any]:
        """The message's application headers (context data among them)."""

    @property
    def properties(self) -> dict[str, Any]:
        """AMQP basic properties: ``reply_to``, ``correlation_id``, ..."""

    @property
    def content_type(self) -> str | None:
        """MIME type of the body, naming its serializer."""

    @property
    def content_encoding(self) -> str | None:
        """Character encoding of the body."""

    @property
    def delivery_info(self) -> dict[str, Any]:
        """``exchange``, ``routing_key``, ``redelivered``, ``delivery_tag``."""

    @property
    def channel(self) -> object:
        """The channel the message came on; it can only be settled there."""

    def ack(self) -> None:
        """Acknowledge the message."""

    def reject(self, requeue: bool = False) -> None:
        """Reject the message, back to its queue if ``requeue``."""


class MessageProvider(Protocol):
    """Something a ``QueueConsumer`` consumes a queue for."""

    @property
    def queue(self) -> Queue | None:
        """The kombu queue to consume; None until the provider's ``setup`` sets it."""

    def handle_message(self, message: DeliveredMessage) -> None:
        """Handle one delivery; the provider settles it (ack, requeue, dead-letter)."""


class ReplyRouter(Protocol):
    """What RPC proxies send requests through and get replies from."""

    @property
    def routing_key(self) -> str | None:
        """Routing key of the reply queue (the requests' ``reply_to``)."""

    @property
    def config(self) -> dict[str, Any]:
        """The caller's config."""

    @property
    def publish_channel(self) -> PublishChannel:
        """The channel requests are published on."""

    def register(self, correlation_id: str, reply: RpcReply) -> None:
        """Expect a reply for ``correlation_id``; it goes to ``reply``."""

    def unregister(self, correlation_id: str) -> None:
        """Stop expecting a reply for ``correlation_id``."""

    def wait_until(self, ready: ReplyReady, timeout: float | None) -> bool:
        """Block until ``ready`` (a reply's) is set; False if ``timeout`` passed first."""


class Transport(Protocol):
    """How nameko_like talks to one kind of broker (see the module docstring).

    ``channel`` arguments are channels of a kombu connection to that broker
    (py-amqp's ``Channel``, or kombu's virtual channel); they stay ``Any``
    here because each implementation knows its own.
    """

    @property
    def in_process(self) -> bool:
        """Whether the broker lives inside this process (nothing outlives it, no
        other process shares its queues): embedded mode."""

    @property
    def confirms(self) -> bool:
        """Whether publishes are confirmed later by the broker, over a socket that
        someone must read (a reader greenthread, or the caller as it waits);
        without, a publish is settled when ``publish`` returns."""

    def connection_params(self, uri: str, config: dict[str, Any],
                          transport_options: dict[str, Any],
                          heartbeat: bool) -> dict[str, Any]:
        """Keyword arguments for ``kombu.Connection`` to ``uri``."""

    def verify(self, config: dict[str, Any], timeout: float) -> None:
        """Check the broker of ``config`` answers; raise ``ConnectionError`` naming the fix."""

    def prepare_consumer_channel(self, channel: Any, prefetch_count: int) -> None:
        """Set up a fresh channel for consuming (prefetch, raw bodies)."""

    def consume(self, channel: Any, queue_name: str, on_message: Callable[[DeliveredMessage], None],
                *, no_ack: bool = False, nowait: bool = False,
                on_cancel: Callable[[str], None] | None = None) -> str:
        """Consume ``queue_name``, each delivery wrapped and passed to ``on_message``;
        return the consumer tag. ``on_cancel(tag)`` hears of a broker's cancel."""

    def cancel(self, channel: Any, consumer_tag: str) -> None:
        """Stop a consumer without waiting for the broker's answer."""

    def wrap(self, raw: Any) -> DeliveredMessage:
        """A delivery of this transport as handlers see it; its ``headers`` name a
        ``compression`` only when the body is still compressed."""

    def declare(self, config: dict[str, Any], channel: Any, entities: Iterable[Any]) -> None:
        """Declare exchanges and queues for publishing on ``channel``'s connection
        (on a connection of its own where a reader owns that one's socket)."""

    def publish(self, channel: Any, confirms: ConfirmTracker, body: Any, exchange: str,
                routing_key: str, mandatory: bool, properties: dict[str, Any]) -> PublishOutcome:
        """Write one publish; its outcome settles with the broker's answer
        (tracked by ``confirms`` where the broker confirms later)."""
