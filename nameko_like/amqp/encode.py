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




#: Frame types, and the octet ending every frame (AMQP 0-9-1, section 4.2.3).
_METHOD_FRAME, _HEADER_FRAME, _BODY_FRAME = 1, 2, 3
_FRAME_END = b"\xce"
#: What a method's frames add to its arguments, properties and body (py-amqp's
#: ``FRAME_OVERHEAD``): beyond a frame, py-amqp splits the body, and so do we.
_FRAME_OVERHEAD = 40


def encode_frames(channel_id: int, method: tuple[int, int], args: bytes,
                  content: amqp.Message | None, frame_max: int) -> bytes:
    """The frames of a method (and its content): the bytes py-amqp's frame writer sends.

    py-amqp packs them into a buffer it shares between callers, under a lock
    (an eventlet semaphore once patched), then writes a view of it; one
    ``join`` of the parts costs a fraction of that. A body larger than a
    frame is split into frames of ``frame_max - 8`` bytes, as py-amqp does;
    py-amqp writes those one by one, here they leave in one write, which no
    other frame can come between.
    """
    payload = _pack(">HH", *method) + args
    parts = [_pack(">BHI", _METHOD_FRAME, channel_id, len(payload)), payload, _FRAME_END]
    if content is not None:
        body = content.body
        if isinstance(body, str):
            # as py-amqp: a str body goes out in its content_encoding (utf-8 by default)
            body = body.encode(content.properties.setdefault("content_encoding", "utf-8"))
        size = len(body)
        properties = content._serialize_properties()
        header = _pack(">HHQ", method[0], 0, size) + properties
        parts += (_pack(">BHI", _HEADER_FRAME, channel_id, len(header)), header, _FRAME_END)
        chunk = frame_max - 8
        if len(args) + len(properties) + size + _FRAME_OVERHEAD <= chunk:
            if size:
                parts += (_pack(">BHI", _BODY_FRAME, channel_id, size), body, _FRAME_END)
        else:
            for start in range(0, size, chunk):
                piece = body[start:start + chunk]
                parts += (_pack(">BHI", _BODY_FRAME, channel_id, len(piece)), piece, _FRAME_END)
    return b"".join(parts)


def write_method(channel: amqp.Channel, method: Any, args: bytes,
                 content: amqp.Message | None = None) -> None:
    """Write a method (its ``args`` serialized) on a py-amqp channel, not waiting for a reply.

    What py-amqp's ``send_method`` does for a method without a reply, less
    the promise it makes and fulfils on every call, and with the frames
    encoded by :func:`encode_frames` and written in one piece to the
    connection's transport (whose ``write`` py-amqp's frame writer calls too:
    a failed write marks the transport disconnected, as there). py-amqp's
    ``Connection._transport`` is private: ``test/amqp/test_send_publish.py``
    checks it is still where py-amqp keeps its transport.
    """
    connection = channel.connection
    transport = connection._transport if connection is not None else None
    if transport is None:
        raise RecoverableConnectionError("connection already closed")
    transport.write(encode_frames(channel.channel_id, method, args, content,
                                  connection.frame_max))
    # as py-amqp's frame writer: heartbeat_check sends no heartbeat while frames go out
    connection.bytes_sent += 1


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
    directly (:func:`publish_args`), and the frames are written in one piece
    by :func:`write_method`, without py-amqp's frame writer and its lock: on
    a connection the tuned writer does not serialise (TLS), the caller must
    hold its own write lock (every caller here does).
    """
    write_method(channel, spec.Basic.Publish, publish_args(exchange, routing_key, mandatory),
                 message)


def send_ack(channel: amqp.Channel, delivery_tag: int) -> None:
    """Write a basic.ack for one message, as py-amqp's ``basic_ack`` does."""
    write_method(channel, spec.Basic.Ack, ack_args(delivery_tag))
