"""send_publish/send_ack: byte for byte the frames py-amqp's own frame writer sends."""

import amqp
import pytest
from amqp import spec
from amqp.exceptions import RecoverableConnectionError
from amqp.method_framing import frame_writer

from nameko_like.amqp import encode
from nameko_like.amqp.wire_properties import WireMessage


class _Transport:
    """A transport recording what is written to it (as one bytes per write)."""

    def __init__(self):
        self.writes = []

    def write(self, data):
        self.writes.append(bytes(data))


class _Connection:
    """What send_publish uses of a py-amqp connection, and what py-amqp's frame writer reads."""

    def __init__(self, frame_max=131072):
        self._transport = _Transport()
        self.frame_max = frame_max
        self.bytes_sent = 0


class _Channel:
    def __init__(self, connection):
        self.connection = connection
        self.channel_id = 3


def py_amqp_bytes(method, args, content, frame_max=131072):
    """What py-amqp's frame writer sends for the same method, all writes joined."""
    connection = _Connection(frame_max)
    transport = _Transport()
    frame_writer(connection, transport)(1, 3, method, args, content)
    assert connection.bytes_sent == 1
    return b"".join(transport.writes)


MESSAGES = [
    pytest.param(lambda: amqp.Message(b'{"args": [1]}', content_type="application/json",
                                      delivery_mode=2, correlation_id="c-1", reply_to="r"),
                 id="rpc request"),
    pytest.param(lambda: WireMessage(b'{"result": 1, "error": null}',
                                     content_type="application/json", content_encoding="utf-8",
                                     application_headers={"nameko.call_id_stack": ["a.b.1"]},
                                     delivery_mode=2, correlation_id="c-1"), id="rpc reply"),
    pytest.param(lambda: amqp.Message(b""), id="empty body"),
    pytest.param(lambda: amqp.Message("héllo"), id="str body"),
    pytest.param(lambda: amqp.Message("héllo", content_encoding="latin-1"), id="latin-1 body"),
]


@pytest.mark.parametrize("make", MESSAGES)
@pytest.mark.parametrize("mandatory", [True, False])
def test_a_publish_is_written_as_py_amqp_writes_it(make, mandatory):
    connection = _Connection()
    args = encode.publish_args("nameko-rpc", "svc.method", mandatory)
    encode.send_publish(_Channel(connection), make(), "nameko-rpc", "svc.method", mandatory)
    assert connection._transport.writes == [py_amqp_bytes(spec.Basic.Publish, args, make())]
    assert connection.bytes_sent == 1  # counted, as py-amqp counts it for its heartbeats


@pytest.mark.parametrize("size", [0, 1, 4000, 4047, 4048, 4049, 8096, 20000])
def test_a_body_larger_than_a_frame_is_split_as_py_amqp_splits_it(size):
    # frame_max 4096: 4088 bytes of payload per frame, less the overhead for the first
    connection = _Connection(frame_max=4096)
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    args = encode.publish_args("", "q", False)
    encode.send_publish(_Channel(connection), amqp.Message(body, delivery_mode=2), "", "q", False)
    written = connection._transport.writes
    assert len(written) == 1  # one piece, nothing can come between its frames
    assert written[0] == py_amqp_bytes(spec.Basic.Publish, args,
                                       amqp.Message(body, delivery_mode=2), frame_max=4096)


@pytest.mark.parametrize("tag", [1, 2**40])
def test_an_ack_is_written_as_py_amqp_writes_it(tag):
    connection = _Connection()
    encode.send_ack(_Channel(connection), tag)
    assert connection._transport.writes == [py_amqp_bytes(spec.Basic.Ack, encode.ack_args(tag),
                                                          None)]


def test_a_closed_connection_raises_as_py_amqp_does():
    with pytest.raises(RecoverableConnectionError):
        encode.send_publish(_Channel(None), amqp.Message(b""), "x", "k", True)
    closed = _Connection()
    closed._transport = None  # what py-amqp's Connection.collect leaves
    with pytest.raises(RecoverableConnectionError):
        encode.send_ack(_Channel(closed), 1)


def test_py_amqp_connections_still_keep_their_transport_where_we_write_to_it():
    # write_method writes to py-amqp's private Connection._transport: if this
    # fails, py-amqp renamed it and write_method must follow.
    connection = amqp.Connection(host="localhost:1")
    assert connection._transport is None
    sentinel = object()
    connection.transport = sentinel
    assert connection._transport is sentinel
