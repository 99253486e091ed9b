"""method_reader: a reader greenthread's drain_events, frame by frame, on a real broker.

It reads py-amqp's private ``Connection._transport`` and
``Connection._on_inbound_frame``: if py-amqp renames them, ``method_reader``
gives None and these tests fail, saying so.
"""

from __future__ import annotations

import socket

import amqp
import pytest

from nameko_like.amqp.connection import connect, make_connection
from nameko_like.amqp.encode import send_publish
from nameko_like.amqp.frame_pump import method_reader
from nameko_like.amqp.transport_tuning import tune_connection

pytestmark = pytest.mark.integration


@pytest.fixture
def tuned(rabbit_config):
    connection = make_connection(rabbit_config, heartbeat=False)
    connect(connection)
    tune_connection(connection)
    try:
        yield connection
    finally:
        connection.release()


def test_each_read_handles_one_method_as_drain_events_does(tuned):
    read = method_reader(tuned)
    assert read is not None, "py-amqp's Connection internals changed: see frame_pump"
    channel = tuned.channel()
    queue, _, _ = channel.queue_declare("", exclusive=True)
    got: list[amqp.Message] = []
    channel.basic_consume(queue, callback=got.append, no_ack=True)
    for i in range(3):
        send_publish(channel, amqp.Message(b"body %d" % i, content_type="text/plain",
                                           application_headers={"n": i}, delivery_mode=2),
                     "", queue, mandatory=False)
    for i in range(3):
        read()  # the delivery's three frames: one message, no more
        assert len(got) == i + 1
    assert [message.body for message in got] == [b"body 0", b"body 1", b"body 2"]
    assert [message.properties["application_headers"] for message in got] == [
        {"n": 0}, {"n": 1}, {"n": 2}]
    assert all(message.properties["delivery_mode"] == 2 for message in got)
    # the read's time-out scope is closed again, for the writes handlers make
    timeouts = tuned._connection._transport._read.timeouts
    assert timeouts.active is False


def test_a_socket_gone_raises_to_the_reader(tuned):
    read = method_reader(tuned)
    assert read is not None
    tuned._connection._transport.sock.shutdown(socket.SHUT_RDWR)
    with pytest.raises(OSError):
        read()


def test_an_untuned_or_unconnected_connection_is_left_to_drain_events(rabbit_config):
    connection = make_connection(rabbit_config, heartbeat=False)
    assert method_reader(connection) is None  # not connected
    connect(connection)
    try:
        assert method_reader(connection) is None  # not tuned
    finally:
        connection.release()
