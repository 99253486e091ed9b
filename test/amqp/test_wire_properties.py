"""WireMessage encodes basic properties byte for byte as py-amqp does."""

from datetime import datetime, timezone
from decimal import Decimal

import amqp
import pytest
from amqp.exceptions import FrameSyntaxError

from nameko_like.amqp.encode import build_message
from nameko_like.amqp.wire_properties import WireMessage, encode_properties

CASES = [
    {},
    {"content_type": "application/json", "content_encoding": "utf-8", "delivery_mode": 2},
    # what an RPC request carries
    {"content_type": "application/json", "content_encoding": "utf-8", "delivery_mode": 2,
     "correlation_id": "3f0c9a1e-0000-4000-8000-000000000000", "reply_to": "a-key",
     "application_headers": {"nameko.call_id_stack": ["standalone_rpc_proxy.call.x", "svc.m.1"],
                             "nameko.language": "en"}},
    {"application_headers": {}, "priority": 9, "expiration": "1500", "message_id": "m",
     "type": "t", "user_id": "guest", "app_id": "a", "cluster_id": "c", "reply_to": ""},
    {"content_type": b"bytes/too", "correlation_id": "caf\u00e9 \udcff"},
    {"application_headers": {
        "s": "text", "b": b"raw", "t": True, "f": False, "i": 7, "neg": -2147483647,
        "big": 2**40, "small": -2147483648, "x": 1.5, "none": None, "list": [1, "a", [True], ()],
        "table": {"inner": {"deeper": "yes"}}, "\u00e9": "key in utf-8", b"bk": 1}},
    # left to py-amqp: a timestamp, Decimal and datetime headers, subclasses
    {"timestamp": 1_700_000_000, "content_type": "a/b"},
    {"application_headers": {"d": Decimal("1.25"),
                             "when": datetime(2024, 1, 2, tzinfo=timezone.utc)}},
    {"application_headers": {"flag": type("MyStr", (str,), {})("sub")}},
]


@pytest.mark.parametrize("properties", CASES)
def test_same_bytes_as_py_amqp(properties):
    ours = WireMessage(b"body", **properties)._serialize_properties()
    theirs = amqp.Message(b"body", **properties)._serialize_properties()
    assert ours == theirs


def test_unusual_values_are_left_to_py_amqp():
    assert encode_properties({"timestamp": 5}) is None
    assert encode_properties({"application_headers": {"d": Decimal(1)}}) is None
    assert encode_properties({"correlation_id": "x" * 256}) is None  # too long a shortstr
    assert encode_properties({"content_type": "a/b"}) is not None


def test_a_header_py_amqp_cannot_encode_still_fails_as_it_does():
    with pytest.raises(FrameSyntaxError):
        WireMessage(b"", application_headers={"o": object()})._serialize_properties()


def test_build_message_makes_wire_messages():
    message = build_message({"a": 1}, headers={"h": "v"}, delivery_mode=2, correlation_id="c")
    assert isinstance(message, WireMessage)
    assert message._serialize_properties() == amqp.Message(
        message.body, **message.properties)._serialize_properties()
