"""The read-ahead frame reader and the deferred socket time-outs, on a real socket pair."""

import socket
import struct

import pytest
from amqp.exceptions import UnexpectedFrame
from amqp.transport import TCPTransport

from nameko_like.amqp.socket_timeouts import ReadTimeout, ScopedWriter
from nameko_like.amqp.transport_tuning import _BufferedReader


def frame(payload: bytes, frame_type: int = 1, channel: int = 1, end: bytes = b"\xce") -> bytes:
    return struct.pack(">BHI", frame_type, channel, len(payload)) + payload + end


@pytest.fixture
def wired():
    ours, broker = socket.socketpair()
    transport = TCPTransport("localhost:5672")
    transport.sock = ours
    timeouts = ReadTimeout(transport)
    transport.having_timeout = timeouts
    reader = _BufferedReader(transport, timeouts)
    yield transport, reader, broker
    ours.close()
    broker.close()


def test_frames_arriving_together_are_read_one_by_one(wired):
    transport, reader, broker = wired
    heartbeat = frame(b"", frame_type=8, channel=0)
    broker.sendall(frame(b"first") + heartbeat + frame(b"third", channel=2))
    with transport.having_timeout(1):
        assert reader.read_frame() == (1, 1, b"first")
        assert reader.read_frame() == (8, 0, b"")
        assert reader.read_frame() == (1, 2, b"third")


def test_a_frame_cut_by_a_timeout_is_read_whole_afterwards(wired):
    transport, reader, broker = wired
    whole = frame(b"x" * 100)
    broker.sendall(whole[:3])  # part of the header
    with transport.having_timeout(0.05), pytest.raises(TimeoutError):
        reader.read_frame()
    broker.sendall(whole[3:50])  # the rest of the header, part of the payload
    with transport.having_timeout(0.05), pytest.raises(TimeoutError):
        reader.read_frame()
    broker.sendall(whole[50:])
    with transport.having_timeout(1):
        assert reader.read_frame() == (1, 1, b"x" * 100)


def test_a_bad_frame_end_is_refused(wired):
    transport, reader, broker = wired
    broker.sendall(frame(b"body", end=b"\x00"))
    with transport.having_timeout(1), pytest.raises(UnexpectedFrame, match="frame_end 0x00"):
        reader.read_frame()


def test_writes_outside_a_read_scope_block_as_the_socket_did(wired):
    transport, reader, broker = wired
    writer = ScopedWriter(transport, transport.having_timeout)
    broker.sendall(frame(b"reply"))
    with transport.having_timeout(30):
        reader.read_frame()
    assert transport.sock.gettimeout() == 30  # left for the next read: no set-and-reset per frame
    writer(frame(b"publish"))
    assert transport.sock.gettimeout() is None
    assert broker.recv(100) == frame(b"publish")


class _CountingSocket:
    """A socket stand-in counting the time-outs set on it."""

    def __init__(self, sock):
        self.sock = sock
        self.set = []
        self.asked = 0

    def gettimeout(self):
        self.asked += 1
        return self.sock.gettimeout()

    def settimeout(self, value):
        self.set.append(value)
        self.sock.settimeout(value)

    def __getattr__(self, name):
        return getattr(self.sock, name)


def test_a_time_out_is_set_only_when_the_scope_wants_another(wired):
    transport, reader, broker = wired
    counting = transport.sock = _CountingSocket(transport.sock)
    writer = ScopedWriter(transport, transport.having_timeout)
    for _ in range(3):  # a plain client's calls: publish, then read the reply
        writer(frame(b"publish"))
        broker.sendall(frame(b"reply"))
        with transport.having_timeout(30):
            assert reader.read_frame() == (1, 1, b"reply")
    # set for each read and put back for each write, never re-set in between,
    # and never asked of the socket (an eventlet socket's gettimeout is Python)
    assert counting.set == [30, None] * 2 + [30]
    assert counting.asked == 0
    assert counting.gettimeout() == 30
    assert broker.recv(1000) == frame(b"publish") * 3
