"""Turning a payload and publish options into an AMQP message, cheaply.

kombu's ``Producer.publish`` rebuilds its options and, through py-amqp,
polls the socket on every publish; on the hot path of a service we encode
with kombu's serializer registry and hand py-amqp a ready message instead.
"""

from __future__ import annotations

import struct
from typing import Any

import amqp
from amqp import spec
from amqp.exceptions import RecoverableConnectionError
from kombu.compression import compress
from kombu.exceptions import EncodeError
from kombu.serialization import dumps, registry
from kombu.utils import json as kombu_json

from nameko_like.amqp.wire_properties import WireMessage
from nameko_like.serialization import JSON_ENCODER

_pack = struct.pack

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




def write_method(channel: amqp.Channel, method: Any, args: bytes,
                 content: amqp.Message | None = None) -> None:
    """Write a method (its ``args`` serialized) on a py-amqp channel, not waiting for a reply.

    What py-amqp's ``send_method`` does for a method without a reply, less
    the promise it makes and fulfils on every call.
    """
    connection = channel.connection
    if connection is None:
        raise RecoverableConnectionError("connection already closed")
    try:
        connection.frame_writer(1, channel.channel_id, method, args, content)
    except StopIteration:
        raise RecoverableConnectionError("connection already closed") from None


def _short_string(value: str | bytes | None) -> bytes:
    """An AMQP shortstr: length octet, then the bytes (as py-amqp encodes it)."""
    data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else (value or b"")
    return _pack("B", len(data)) + data


def publish_args(exchange: str, routing_key: str, mandatory: bool) -> bytes:
    """basic.publish's arguments: py-amqp's ``dumps("Bssbb", ...)`` without its generic loop."""
    return (b"\x00\x00" + _short_string(exchange) + _short_string(routing_key)
            + (b"\x01" if mandatory else b"\x00"))


def ack_args(delivery_tag: int) -> bytes:
    """basic.ack's arguments for one message (``multiple`` off), as ``dumps("Lb", ...)``."""
    return _pack(">QB", delivery_tag, 0)


def send_publish(channel: amqp.Channel, message: amqp.Message, exchange: str, routing_key: str,
                 mandatory: bool) -> None:
    """Write a basic.publish on a py-amqp channel without polling the socket.

    py-amqp's own ``basic_publish`` reads the socket before each publish to
    catch ``connection.blocked``; here a reader greenthread owns reads. Its
    ``send_method`` also encodes the method's arguments and makes a promise
    nobody waits on, on every publish: here the arguments are packed
    directly (:func:`publish_args`), and the frames go to the connection's frame writer (which
    holds py-amqp's write lock) directly.
    """
    write_method(channel, spec.Basic.Publish, publish_args(exchange, routing_key, mandatory),
                 message)


def send_ack(channel: amqp.Channel, delivery_tag: int) -> None:
    """Write a basic.ack for one message, as py-amqp's ``basic_ack`` does."""
    write_method(channel, spec.Basic.Ack, ack_args(delivery_tag))
