"""Span names and attributes, per OpenTelemetry's semantic conventions.

Messaging (RabbitMQ): ``messaging.system`` is ``rabbitmq``; a publish is a
PRODUCER span ``publish <exchange>:<routing key>``, the worker that
processes a delivered message a CONSUMER span
``process <exchange>:<routing key>:<queue>`` (empty parts left out, the
queue left out when it is the routing key). HTTP: a SERVER span
``<METHOD> <route template>``. Attributes of our own are under
``nameko.`` (service, entrypoint method, call id).
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, MutableMapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:
    from nameko_like.worker_context import WorkerContext

Attributes = dict[str, AttributeValue]

#: The route label the web server gives requests no rule matched.
_UNMATCHED = "<unmatched>"


def worker_attributes(worker_ctx: WorkerContext) -> Attributes:
    """Our own attributes of a worker: service, entrypoint method, call id."""
    return {
        "nameko.service": worker_ctx.container.service_name,
        "nameko.entrypoint": worker_ctx.entrypoint.method_name or "",
        "nameko.call_id": worker_ctx.call_id,
    }


def _queue_name(worker_ctx: WorkerContext) -> str:
    """The queue the worker's entrypoint consumes (``@rpc`` through its consumer)."""
    entrypoint: Any = worker_ctx.entrypoint
    queue = getattr(entrypoint, "queue", None)
    if queue is None:
        queue = getattr(getattr(entrypoint, "rpc_consumer", None), "queue", None)
    name = getattr(queue, "name", None)
    return name if isinstance(name, str) else ""


def publish_destination(exchange: str, routing_key: str) -> str:
    """``messaging.destination.name`` of a publish, as the RabbitMQ conventions build it."""
    if exchange and routing_key:
        return f"{exchange}:{routing_key}"
    return exchange or routing_key or "amq.default"


def consume_destination(exchange: str, routing_key: str, queue: str) -> str:
    """``messaging.destination.name`` of a delivery: exchange, routing key, queue."""
    parts = [exchange, routing_key]
    if queue != routing_key:
        parts.append(queue)
    return ":".join(part for part in parts if part) or "amq.default"


def _put_present(attributes: Attributes, key: str, value: object) -> None:
    """Set ``key`` to ``value`` as text, unless ``value`` is missing or empty."""
    if value:
        attributes[key] = str(value)


def _messaging_attributes(attributes: Attributes, operation_type: str, operation_name: str,
                          destination: str, routing_key: str) -> Attributes:
    """``attributes`` plus those a publish and a delivery share: system,
    operation, destination."""
    attributes.update({
        "messaging.system": "rabbitmq",
        "messaging.operation.type": operation_type,
        "messaging.operation.name": operation_name,
        "messaging.destination.name": destination,
    })
    if routing_key:
        attributes["messaging.rabbitmq.destination.routing_key"] = routing_key
    return attributes


# The parts of a span's name and attributes that depend only on where a
# message goes are built once per destination (the cache is bounded: a
# Publisher's routing keys may be many).
@lru_cache(maxsize=1024)
def _producer_base(exchange: str, routing_key: str) -> tuple[str, Attributes]:
    destination = publish_destination(exchange, routing_key)
    return f"publish {destination}", _messaging_attributes(
        {}, "send", "publish", destination, routing_key)


def producer(exchange: str, routing_key: str, correlation_id: str | None) -> tuple[str, Attributes]:
    """Name and attributes of the PRODUCER span of one publish."""
    name, base = _producer_base(exchange, routing_key)
    # A copy even without a correlation id: a sampler may (wrongly, but
    # harmlessly before) write into the attributes it is given; the cached
    # dict must never carry that into other spans.
    attributes = base.copy()
    if correlation_id:
        attributes["messaging.message.conversation_id"] = correlation_id
    return name, attributes


@lru_cache(maxsize=1024)
def _consumer_base(service: str, method: str, exchange: str, routing_key: str,
                   queue: str) -> tuple[str, Attributes]:
    destination = consume_destination(exchange, routing_key, queue)
    attributes: Attributes = {"nameko.service": service, "nameko.entrypoint": method}
    return f"process {destination}", _messaging_attributes(
        attributes, "process", "process", destination, routing_key)


def consumer(worker_ctx: WorkerContext, message: Any) -> tuple[str, ConsumerAttributes]:
    """Name and attributes of the CONSUMER span of the worker processing ``message``."""
    info: Mapping[str, Any] = message.delivery_info or {}
    name, base = _consumer_base(
        worker_ctx.container.service_name, worker_ctx.entrypoint.method_name or "",
        info.get("exchange") or "", info.get("routing_key") or "", _queue_name(worker_ctx))
    return name, ConsumerAttributes(base, worker_ctx, message)


class ConsumerAttributes(MutableMapping[str, AttributeValue]):
    """A CONSUMER span's attributes, those particular to its message built when first read.

    The SDK reads the attributes a span starts with only to keep them (and
    a sampler only if it looks at them): most spans are dropped where
    sampling is on, and their message attributes (call id, delivery tag,
    ids, body size) are then never built. A span that records reads them
    all at its start, as if they were a dict.
    """

    __slots__ = ("_all", "_base", "_message", "_worker_ctx")

    def __init__(self, base: Attributes, worker_ctx: WorkerContext, message: Any) -> None:
        self._base = base  # shared by the entrypoint's spans: never changed
        self._worker_ctx = worker_ctx
        self._message = message
        self._all: Attributes | None = None

    def _built(self) -> Attributes:
        if self._all is None:
            self._all = {**self._base, **consumer_message(self._worker_ctx, self._message)}
        return self._all

    def __getitem__(self, key: str) -> AttributeValue:
        return self._built()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())

    def items(self) -> ItemsView[str, AttributeValue]:
        """The attributes' items (the dict's own view: what the SDK iterates)."""
        return self._built().items()

    def __setitem__(self, key: str, value: AttributeValue) -> None:
        # A sampler may write into the attributes it is given (the SDK types
        # them read-only, but a plain dict allowed it): into this span's own.
        self._built()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._built()[key]


def consumer_message(worker_ctx: WorkerContext, message: Any) -> Attributes:
    """The CONSUMER span's attributes particular to this worker and message:
    call id, delivery tag, correlation and message ids, body size."""
    attributes: Attributes = {"nameko.call_id": worker_ctx.call_id}
    tag = (message.delivery_info or {}).get("delivery_tag")
    if isinstance(tag, int):
        attributes["messaging.rabbitmq.message.delivery_tag"] = tag
    properties: Mapping[str, Any] = getattr(message, "properties", None) or {}
    _put_present(attributes, "messaging.message.conversation_id",
                 properties.get("correlation_id"))
    _put_present(attributes, "messaging.message.id", properties.get("message_id"))
    body = getattr(message, "body", None)
    if isinstance(body, (bytes, bytearray)):
        attributes["messaging.message.body.size"] = len(body)
    return attributes


def worker(worker_ctx: WorkerContext) -> tuple[str, SpanKind, Attributes]:
    """Name, kind and attributes of a worker no message or request announced.

    Websocket RPC calls are SERVER spans named as RPC conventions name them
    (``<service>/<method>``); timers and custom entrypoints INTERNAL spans.
    """
    # imported here: the web package is not needed to trace a worker
    from nameko_like.web.websocket import WebSocketRpc

    attributes = worker_attributes(worker_ctx)
    service, method = worker_ctx.container.service_name, worker_ctx.entrypoint.method_name
    if isinstance(worker_ctx.entrypoint, WebSocketRpc):
        attributes.update({"rpc.system": "nameko_websocket", "rpc.service": service,
                           "rpc.method": method or ""})
        return f"{service}/{method}", SpanKind.SERVER, attributes
    return f"{service}.{method}", SpanKind.INTERNAL, attributes


def http_request(environ: Mapping[str, Any]) -> tuple[str, Attributes]:
    """Name and attributes of an HTTP request's SERVER span, before routing."""
    method = str(environ.get("REQUEST_METHOD") or "GET")
    attributes: Attributes = {
        "http.request.method": method,
        "url.path": str(environ.get("PATH_INFO") or "/"),
        "url.scheme": str(environ.get("wsgi.url_scheme") or "http"),
    }
    protocol = str(environ.get("SERVER_PROTOCOL") or "")
    if protocol.startswith("HTTP/"):
        attributes["network.protocol.version"] = protocol[5:]
    _put_present(attributes, "user_agent.original", environ.get("HTTP_USER_AGENT"))
    _put_present(attributes, "client.address", environ.get("REMOTE_ADDR"))
    return method, attributes


def http_response(span: Span, route: str, method: str, status: int) -> None:
    """Name ``span`` after its route template and record the response status.

    A server span is an error only for 5xx answers: 4xx are the client's.
    """
    if route != _UNMATCHED:
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
        span.set_attribute("error.type", str(status))
