"""write_method: publish and ack frames written without py-amqp's promise, on a real broker."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import amqp
import pytest
from amqp.exceptions import RecoverableConnectionError

from nameko_like.amqp.encode import send_ack, send_publish

pytestmark = pytest.mark.integration


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


def test_writing_on_a_closed_channel_fails_as_py_amqp_does(channel):
    channel.close()
    with pytest.raises(RecoverableConnectionError):
        send_ack(channel, 1)
    with pytest.raises(RecoverableConnectionError):
        send_publish(channel, amqp.Message(b"x"), "", "anywhere", mandatory=False)
