"""Encoding a message's AMQP basic properties in one pass.

py-amqp encodes a publish's properties (its content header) through a
generic serializer: a format string built per message, a ``BytesIO`` and a
``struct.pack`` per field, twice over for the headers table. Every RPC
request and reply, event and confirm-mode publish pays that.
:class:`WireMessage` encodes the usual properties (strings, the delivery
mode and priority, a headers table of strings, numbers, booleans, lists and
tables) straight into bytes, identical to py-amqp's; anything else (a
timestamp, a ``Decimal`` or ``datetime`` header, a subclass of a basic type)
goes to py-amqp's own serializer, so the wire format never differs.
"""

from __future__ import annotations

import struct
from typing import Any

import amqp

from nameko_like.exceptions import NamekoLikeException

#: (property, AMQP type, flag bit) in py-amqp's order; basic has 14, one flag word
_PLAN = tuple((name, kind, 1 << (15 - index))
              for index, (name, kind) in enumerate(amqp.Message.PROPERTIES))

_pack = struct.pack


class _Unusual(NamekoLikeException):
    """A value this encoder leaves to py-amqp's (never leaves this module)."""


def _text(value: Any) -> bytes:
    if type(value) is str:
        return value.encode("utf-8", "surrogatepass")
    if type(value) is bytes:
        return value
    raise _Unusual


def _item(value: Any) -> bytes:
    kind = type(value)
    if kind is str or kind is bytes:
        data = _text(value)
        return _pack(">cI", b"S", len(data)) + data
    if kind is bool:
        return b"t\x01" if value else b"t\x00"
    if kind is int:
        if value > 2147483647 or value < -2147483647:
            return _pack(">cq", b"L", value)
        return _pack(">ci", b"I", value)
    if kind is float:
        return _pack(">cd", b"d", value)
    if kind is list or kind is tuple:
        data = b"".join([_item(item) for item in value])
        return b"A" + _pack(">I", len(data)) + data
    if kind is dict:
        return b"F" + _table(value)
    if value is None:
        return b"V"
    raise _Unusual


def _table(table: dict[Any, Any]) -> bytes:
    parts = []
    for key, value in table.items():
        name = _text(key)
        parts.append(_pack("B", len(name)))
        parts.append(name)
        parts.append(_item(value))
    data = b"".join(parts)
    return _pack(">I", len(data)) + data


def encode_properties(properties: dict[str, Any]) -> bytes | None:
    """The property flags and list of a basic content header; None if unusual.

    None: a value this encoder does not handle; py-amqp's serializer does.
    """
    flags = 0
    parts = [b""]
    try:
        for name, kind, bit in _PLAN:
            value = properties.get(name)
            if value is None:
                continue
            flags |= bit
            if kind == "s":
                data = _text(value)
                parts.append(_pack("B", len(data)))
                parts.append(data)
            elif kind == "o":
                parts.append(_pack("B", value))
            elif kind == "F":
                if type(value) is not dict:
                    return None
                parts.append(_table(value) if value else b"\x00\x00\x00\x00")
            else:  # a timestamp ('L')
                return None
    except (_Unusual, struct.error):
        return None
    parts[0] = _pack(">H", flags)
    return b"".join(parts)


class WireMessage(amqp.Message):  # type: ignore[misc]  # py-amqp ships no types
    """A py-amqp message whose properties are encoded in one pass (see the module)."""

    def _serialize_properties(self) -> bytes:
        encoded = encode_properties(self.properties)
        if encoded is None:
            encoded = super()._serialize_properties()
        return encoded
