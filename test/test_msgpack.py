"""``serializer: msgpack`` (the ``msgpack`` extra) speaks Nameko's msgpack wire format.

Nameko with ``serializer: msgpack`` publishes through kombu's registered
``msgpack`` serializer: content type ``application/x-msgpack``, encoding
``binary``, bodies made by ``msgpack.packb``. These tests publish exactly
that with kombu (as Nameko does) and read what nameko_like sends with
``msgpack.unpackb``, on the real broker.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import msgpack
import pytest
from kombu import Connection, Exchange, Producer, Queue
from kombu import serialization as kombu_serialization

from nameko_like.events import event_handler
from nameko_like.rpc import rpc
from nameko_like.serialization import setup
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.services import entrypoint_waiter

RPC_EXCHANGE = Exchange("nameko-rpc", type="topic", durable=True)
MSGPACK = {"serializer": "msgpack"}


class Calculator:
    name = "calculator"

    @rpc
    def add(self, left, right):
        return {"sum": left + right, "raw": b"\x00\xff", "items": [left, right]}

    @event_handler("shop", "order_placed")
    def on_order(self, payload):
        return payload


def test_kombu_registers_the_msgpack_serializer_nameko_uses():
    assert kombu_serialization.registry._encoders["msgpack"].content_type == (
        "application/x-msgpack")
    assert setup(MSGPACK).accept == ["msgpack"]


@pytest.mark.integration
def test_rpc_request_published_as_nameko_does_gets_a_msgpack_reply(container_factory,
                                                                    rabbit_config):
    container = container_factory(Calculator, dict(rabbit_config, **MSGPACK))
    container.start()
    reply_to = f"rpc.reply-test-{uuid.uuid4().hex}"
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        channel = connection.channel()
        replies = Queue(reply_to, exchange=RPC_EXCHANGE, routing_key=reply_to,
                        auto_delete=True)(channel)
        replies.declare()
        Producer(channel).publish(
            {"args": [2, 3], "kwargs": {}}, exchange=RPC_EXCHANGE,
            routing_key="calculator.add", serializer="msgpack", reply_to=reply_to,
            correlation_id="c-1", headers={"nameko.call_id_stack": ["test.call.1"]})
        message = None
        for _ in range(100):
            message = replies.get(no_ack=True, accept=["application/x-msgpack"])
            if message is not None:
                break
            time.sleep(0.05)
    assert message is not None, "no reply"
    assert message.content_type == "application/x-msgpack"
    assert message.properties["correlation_id"] == "c-1"
    assert msgpack.unpackb(message.body, raw=False) == {
        "result": {"sum": 5, "raw": b"\x00\xff", "items": [2, 3]}, "error": None}


@pytest.mark.integration
def test_nameko_like_callers_and_events_write_msgpack(container_factory, rabbit_config):
    config = dict(rabbit_config, **MSGPACK)
    container = container_factory(Calculator, config)
    container.start()
    with ClusterRpcProxy(config, timeout=10) as cluster:
        assert cluster.calculator.add(1, 2)["raw"] == b"\x00\xff"

    watched = Queue(f"watch-{uuid.uuid4().hex}", exchange=Exchange("shop.events", type="topic"),
                    routing_key="order_placed", auto_delete=True)
    with Connection(config["AMQP_URI"]) as connection:
        watched(connection.channel()).declare()
        with entrypoint_waiter(container, "on_order", timeout=10) as handled:
            event_dispatcher(config)("shop", "order_placed", {"order": 7})
        message = watched(connection.channel()).get(no_ack=True,
                                                    accept=["application/x-msgpack"])
    assert handled.get() == {"order": 7}
    assert message.content_type == "application/x-msgpack"
    assert message.content_encoding == "binary"
    assert msgpack.unpackb(message.body, raw=False) == {"order": 7}


def test_without_the_package_the_error_names_the_extra():
    # a fresh interpreter in which msgpack cannot be imported (kombu then
    # registers a msgpack serializer that fails at the first publish)
    script = (
        "import sys; sys.modules['msgpack'] = None\n"
        "from nameko_like.serialization import setup\n"
        "from nameko_like.exceptions import ConfigurationError\n"
        "for config in ({'serializer': 'msgpack'}, {'ACCEPT': ['json', 'msgpack']}):\n"
        "    try:\n"
        "        setup(config)\n"
        "    except ConfigurationError as exc:\n"
        "        print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stderr
    assert lines == [
        "config key 'serializer': serializer 'msgpack' needs the msgpack package: "
        "pip install 'nameko_like[msgpack]'",
        "config key 'ACCEPT': serializer 'msgpack' needs the msgpack package: "
        "pip install 'nameko_like[msgpack]'"]
