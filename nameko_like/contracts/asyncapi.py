"""The AsyncAPI 3.0 document of the AMQP side of services.

What it describes, named as on the wire (see :mod:`nameko_like.rpc.wire`
and :mod:`nameko_like.events`):

* each ``@rpc`` method: a channel for its requests (routing key
  ``<service>.<method>`` on the RPC exchange; payload ``{"args": [...],
  "kwargs": {...}}`` with each argument's schema) and a reply channel (the
  caller's ``reply_to``; payload ``{"result": ..., "error": ...}``);
* each ``@event_handler``: the ``<source>.events`` exchange and the event
  type as routing key, with the handler's payload schema;
* each ``@consume``: its queue, with the payload schema;
* the broker, from ``AMQP_URI`` (without credentials).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from nameko_like.constants import AMQP_URI_CONFIG_KEY, DEFAULT_AMQP_URI
from nameko_like.contracts.schemas import SchemaSet, declared_entrypoints, service_name
from nameko_like.contracts.signature import Contract, method_contract
from nameko_like.events import EventHandler
from nameko_like.messaging import Consumer
from nameko_like.rpc import wire
from nameko_like.rpc.entrypoint import Rpc

#: AsyncAPI version of the documents.
ASYNCAPI_VERSION = "3.0.0"
#: Version of the AMQP bindings used.
_AMQP_BINDING = "0.3.0"
_SERVER = "broker"

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A remote exception: rebuilt by the caller as its type, or as RemoteError",
    "properties": {"exc_type": {"type": "string"}, "exc_path": {"type": "string"},
                   "exc_args": {"type": "array"}, "value": {"type": "string"}},
    "required": ["exc_type", "exc_path", "exc_args", "value"],
}


def _server(config: dict[str, Any]) -> dict[str, Any]:
    uri = urlsplit(str(config.get(AMQP_URI_CONFIG_KEY) or DEFAULT_AMQP_URI))
    vhost = unquote(uri.path[1:]) if len(uri.path) > 1 else "/"
    host = uri.hostname or "localhost"
    return {
        "host": f"{host}:{uri.port or (5671 if uri.scheme == 'amqps' else 5672)}",
        "protocol": "amqps" if uri.scheme == "amqps" else "amqp",
        "protocolVersion": "0.9.1",
        "pathname": "/" + vhost.lstrip("/") if vhost != "/" else "/",
        "description": f"RabbitMQ, virtual host {vhost!r}",
    }


class _Builder:
    """Collects channels, operations and messages service by service."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.schemas = SchemaSet()
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}

    def message(self, key: str, title: str, payload: dict[str, Any],
                correlated: bool = False) -> dict[str, str]:
        message: dict[str, Any] = {"name": key, "title": title,
                                   "contentType": "application/json", "payload": payload}
        if correlated:
            message["correlationId"] = {"location": "$message.header#/correlation_id"}
        self.messages[key] = message
        return {"$ref": f"#/components/messages/{key}"}

    def add_rpc(self, service: str, method: str, contract: Contract) -> None:
        exchange = wire.rpc_exchange(self.config).name
        parameters = contract.parameters
        positional = [self.schemas.parameter(p) for p in parameters]
        request = {
            "type": "object",
            "description": "Arguments may be given by position (args) or by name (kwargs)",
            "properties": {
                "args": ({"type": "array", "items": positional, "maxItems": len(positional)}
                         if positional else {"type": "array", "maxItems": 0}),
                "kwargs": {"type": "object", "additionalProperties": False,
                           "properties": {p.name: self.schemas.parameter(p)
                                          for p in parameters}},
            },
            "required": ["args", "kwargs"],
        }
        reply = {
            "type": "object",
            "properties": {"result": self.schemas.result(contract),
                           "error": {"anyOf": [{"type": "null"}, _ERROR_SCHEMA]}},
            "required": ["result", "error"],
        }
        key = f"{service}.{method}"
        channel, reply_channel = f"rpc.{key}", f"rpc.{key}.reply"
        self.channels[channel] = {
            "address": key,
            "title": f"RPC requests to {key}",
            "description": f"Consumed from queue {wire.service_queue(self.config, service).name}",
            "servers": [{"$ref": f"#/servers/{_SERVER}"}],
            "messages": {"request": self.message(f"{key}.request", f"{key} request", request,
                                                 correlated=True)},
            "bindings": {"amqp": {
                "is": "routingKey", "bindingVersion": _AMQP_BINDING,
                "exchange": {"name": exchange, "type": "topic", "durable": True,
                             "autoDelete": False}}},
        }
        self.channels[reply_channel] = {
            "address": None,
            "title": f"Replies from {key}",
            "description": "The caller's reply queue, named by the request's reply_to",
            "messages": {"reply": self.message(f"{key}.reply", f"{key} reply", reply,
                                               correlated=True)},
        }
        self.operations[key] = {
            "action": "receive",
            "title": key,
            "summary": _summary(contract),
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/request"}],
            "reply": {
                "address": {"location": "$message.header#/reply_to"},
                "channel": {"$ref": f"#/channels/{reply_channel}"},
                "messages": [{"$ref": f"#/channels/{reply_channel}/messages/reply"}],
            },
        }

    def add_message_handler(self, service: str, method: str, entrypoint: Consumer,
                            contract: Contract) -> None:
        # the method takes the payload as its one argument
        payload = self.schemas.parameter(contract.parameters[0]) if contract.parameters else {}
        if isinstance(entrypoint, EventHandler):
            source, event_type = entrypoint.source_service, entrypoint.event_type
            channel = f"event.{source}.{event_type}"
            self.channels.setdefault(channel, {
                "address": event_type,
                "title": f"{event_type} events of {source}",
                "servers": [{"$ref": f"#/servers/{_SERVER}"}],
                "messages": {"event": self.message(
                    f"{source}.{event_type}", f"{event_type} event", payload)},
                "bindings": {"amqp": {
                    "is": "routingKey", "bindingVersion": _AMQP_BINDING,
                    "exchange": {"name": f"{source}.events", "type": "topic",
                                 "durable": True, "autoDelete": False}}},
            })
            message_key = "event"
        else:
            queue = entrypoint.queue
            channel = f"queue.{queue.name}"
            exchange = queue.exchange
            bindings: dict[str, Any] = {"is": "queue", "bindingVersion": _AMQP_BINDING,
                                        "queue": {"name": queue.name,
                                                  "durable": bool(queue.durable),
                                                  "exclusive": bool(queue.exclusive),
                                                  "autoDelete": bool(queue.auto_delete)}}
            self.channels.setdefault(channel, {
                "address": queue.name,
                "title": f"queue {queue.name}"
                         + (f" (bound to {exchange.name})" if exchange and exchange.name
                            else ""),
                "servers": [{"$ref": f"#/servers/{_SERVER}"}],
                "messages": {"message": self.message(
                    f"queue.{queue.name}", f"message on {queue.name}", payload)},
                "bindings": {"amqp": bindings},
            })
            message_key = "message"
        key = f"{service}.{method}"
        self.operations[key] = {
            "action": "receive",
            "title": key,
            "summary": _summary(contract),
            "channel": {"$ref": f"#/channels/{channel}"},
            "messages": [{"$ref": f"#/channels/{channel}/messages/{message_key}"}],
        }


def _summary(contract: Contract) -> str:
    return contract.summary or contract.where


def asyncapi_document(services: Sequence[type], config: dict[str, Any] | None = None,
                      title: str | None = None, version: str = "1.0.0") -> dict[str, Any]:
    """The AsyncAPI 3.0 document (a JSON-able dict) of ``services``' AMQP side."""
    config = dict(config or {})
    builder = _Builder(config)
    names = []
    for service_cls in services:
        service = service_name(service_cls)
        names.append(service)
        for method, entrypoint in declared_entrypoints(service_cls):
            if isinstance(entrypoint, Rpc):
                builder.add_rpc(service, method, method_contract(service_cls, method))
            elif isinstance(entrypoint, Consumer):
                builder.add_message_handler(service, method, entrypoint,
                                            method_contract(service_cls, method))
    components: dict[str, Any] = {"messages": builder.messages}
    if builder.schemas.components:
        components["schemas"] = builder.schemas.components
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": title or f"{', '.join(names)} (AMQP)", "version": version,
                 "description": "Generated by nameko_like from the services' type hints."},
        "defaultContentType": "application/json",
        "servers": {_SERVER: _server(config)},
        "channels": builder.channels,
        "operations": builder.operations,
        "components": components,
    }
