"""Turning a payload and publish options into an AMQP message, cheaply.

kombu's ``Producer.publish`` rebuilds its options and, through py-amqp,
polls the socket on every publish; on the hot path of a service we encode
with kombu's serializer registry and hand py-amqp a ready message instead.
"""

from __future__ import annotations

from typing import Any

import amqp
from amqp import serialization, spec
from amqp.exceptions import RecoverableConnectionError
from kombu.compression import compress
from kombu.exceptions import EncodeError
from kombu.serialization import dumps, registry
from kombu.utils import json as kombu_json

from nameko_like.amqp.wire_properties import WireMessage
from nameko_like.serialization import JSON_ENCODER

#: AMQP basic properties a publish may set (besides body and headers).
_PROPERTY_NAMES = frozenset({
    "content_type", "content_encoding", "delivery_mode", "priority", "correlation_id",
    "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id",
})


def encode_body(body: Any, serializer: str | None, content_type: str | None,
                content_encoding: str | None) -> tuple[bytes, str, str]:
    """``(data, content_type, content_encoding)`` for ``body``.

    With an explicit ``content_type`` the body is taken as already encoded.
    """
    if not content_type:
        if (serializer or "json") == "json" and _default_json_encoder():
            try:
                return JSON_ENCODER.encode(body).encode("utf-8"), "application/json", "utf-8"
            except (TypeError, ValueError) as exc:
                raise EncodeError(str(exc)) from exc
        content_type, content_encoding, data = dumps(body, serializer=serializer or "json")
        return data, content_type, content_encoding
    if isinstance(body, str):
        content_encoding = content_encoding or "utf-8"
        return body.encode(content_encoding), content_type, content_encoding
    return body, content_type, content_encoding or "binary"


def _default_json_encoder() -> bool:
    """Whether 'json' is still kombu's own serializer (not replaced by the user)."""
    return registry._encoders["json"].encoder is kombu_json.dumps


def build_message(body: Any, serializer: str | None = None, compression: str | None = None,
                  headers: dict[str, Any] | None = None, expiration: float | None = None,
                  **properties: Any) -> amqp.Message:
    """A py-amqp message with kombu's encoding conventions."""
    unknown = set(properties) - _PROPERTY_NAMES
    if unknown:
        raise TypeError(f"unknown publish option(s): {', '.join(sorted(unknown))}")
    headers = dict(headers) if headers else {}
    data, content_type, content_encoding = encode_body(
        body, serializer, properties.pop("content_type", None),
        properties.pop("content_encoding", None))
    if compression:
        data, headers["compression"] = compress(data, compression)
    if expiration is not None:
        properties["expiration"] = str(int(expiration * 1000))
    if not properties.get("priority"):
        properties.pop("priority", None)
    return WireMessage(data, content_type=content_type, content_encoding=content_encoding,
                       application_headers=headers, **properties)


#: Encoded ``basic.publish`` arguments by (exchange, routing key, mandatory):
#: a client or service publishes to a handful of routes, again and again.
_publish_args: dict[tuple[str, str, bool], bytes] = {}
#: Routes whose arguments are kept; past that, the cache starts afresh.
PUBLISH_ARGS_KEPT = 1024


def send_publish(channel: amqp.Channel, message: amqp.Message, exchange: str, routing_key: str,
                 mandatory: bool) -> None:
    """Write a basic.publish on a py-amqp channel without polling the socket.

    py-amqp's own ``basic_publish`` reads the socket before each publish to
    catch ``connection.blocked``; here a reader greenthread owns reads. Its
    ``send_method`` also encodes the method's arguments and makes a promise
    nobody waits on, on every publish: here the arguments of a route are
    encoded once, and the frames go to the connection's frame writer (which
    holds py-amqp's write lock) directly.
    """
    key = (exchange, routing_key, mandatory)
    args = _publish_args.get(key)
    if args is None:
        args = serialization.dumps("Bssbb", (0, exchange, routing_key, mandatory, False))
        if len(_publish_args) >= PUBLISH_ARGS_KEPT:
            # a service replies to many clients' queues over its life: start afresh
            _publish_args.clear()
        _publish_args[key] = args
    connection = channel.connection
    if connection is None:
        raise RecoverableConnectionError("connection already closed")
    try:
        connection.frame_writer(1, channel.channel_id, spec.Basic.Publish, args, message)
    except StopIteration:  # as py-amqp's send_method: the writer is gone
        raise RecoverableConnectionError("connection already closed") from None
