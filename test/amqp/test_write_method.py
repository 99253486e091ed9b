"""write_method and the publish/ack arguments: what py-amqp would write, written more cheaply."""

from __future__ import annotations

import struct
import time
from urllib.parse import urlsplit

import amqp
import pytest
from amqp.exceptions import RecoverableConnectionError
from amqp.serialization import dumps

from nameko_like.amqp.encode import ack_args, publish_args, send_ack, send_publish

@pytest.fixture
def channel(rabbit_config):
    uri = urlsplit(rabbit_config["AMQP_URI"])
    connection = amqp.Connection(host=f"{uri.hostname}:{uri.port or 5672}", userid=uri.username,
                                 password=uri.password, virtual_host=rabbit_config["vhost"])
    connection.connect()
    try:
        yield connection.channel()
    finally:
        connection.close()


@pytest.mark.integration
def test_a_published_message_is_delivered_and_its_ack_settles_it(channel):
    queue, _, _ = channel.queue_declare("", exclusive=True)
    send_publish(channel, amqp.Message(b"hello", delivery_mode=2), "", queue, mandatory=True)
    message = None
    for _ in range(50):
        message = channel.basic_get(queue)
        if message is not None:
            break
        time.sleep(0.05)  # routing to the queue takes a moment
    assert message is not None and message.body == b"hello"
    send_ack(channel, message.delivery_tag)
    # acked: nothing left, nothing unacked to come back when the channel closes
    channel.basic_recover(requeue=True)
    assert channel.basic_get(queue) is None
    assert channel.queue_declare(queue, passive=True).message_count == 0


@pytest.mark.integration
def test_writing_on_a_closed_channel_fails_as_py_amqp_does(channel):
    channel.close()
    with pytest.raises(RecoverableConnectionError):
        send_ack(channel, 1)
    with pytest.raises(RecoverableConnectionError):
        send_publish(channel, amqp.Message(b"x"), "", "anywhere", mandatory=False)


@pytest.mark.parametrize("exchange, routing_key, mandatory", [
    ("", "rpc-echo", True),
    ("nameko-rpc", "echo.echo", False),
    ("ex", "r" * 255, True),
    ("échange", "clé\udcff", False),  # non-ASCII, and a lone surrogate as py-amqp passes it
    (None, "", True),
])
def test_publish_args_are_what_py_amqp_would_write(exchange, routing_key, mandatory):
    assert publish_args(exchange, routing_key, mandatory) == dumps(
        "Bssbb", (0, exchange, routing_key, mandatory, False))


@pytest.mark.parametrize("tag", [1, 255, 2**32 + 7, 2**64 - 1])
def test_ack_args_are_what_py_amqp_would_write(tag):
    assert ack_args(tag) == dumps("Lb", (tag, False))


def test_a_routing_key_too_long_for_amqp_fails_as_py_amqp_does():
    with pytest.raises(struct.error):
        dumps("Bssbb", (0, "", "k" * 256, False, False))
    with pytest.raises(struct.error):
        publish_args("", "k" * 256, False)
