"""send_publish: py-amqp's basic.publish frames, without its send_method."""

import amqp
import pytest
from amqp import spec
from amqp.exceptions import RecoverableConnectionError

from nameko_like.amqp import encode


class _Connection:
    """What send_publish uses of a py-amqp connection: its frame writer."""

    def __init__(self):
        self.frames = []

    def frame_writer(self, frame_type, channel_id, method, args, content):
        self.frames.append((frame_type, channel_id, method, args, content))


class _Channel:
    def __init__(self, connection):
        self.connection = connection
        self.channel_id = 3


def test_writes_what_send_method_would():
    connection = _Connection()
    message = amqp.Message(b"{}")
    encode.send_publish(_Channel(connection), message, "nameko-rpc", "svc.method", True)
    encode.send_publish(_Channel(connection), message, "nameko-rpc", "svc.method", False)
    assert connection.frames == [
        (1, 3, spec.Basic.Publish,
         amqp.serialization.dumps("Bssbb", (0, "nameko-rpc", "svc.method", mandatory, False)),
         message)
        for mandatory in (True, False)]


def test_a_closed_connection_raises_as_py_amqp_does():
    with pytest.raises(RecoverableConnectionError):
        encode.send_publish(_Channel(None), amqp.Message(b""), "x", "k", True)
