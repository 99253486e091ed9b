"""Writes batched per turn of eventlet's hub, the turn counted where the hub fires its timers.

Real green socket pairs and eventlet's real hub: the counter relies on how
the hub's loop calls ``fire_timers`` (see :mod:`nameko_like.amqp.hub_turns`), so
these fail if a new eventlet stops doing so.
"""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.amqp.hub_turns import turns_of
from nameko_like.amqp.transport_tuning import _CoalescingWriter

green_socket = eventlet.green.socket


@pytest.fixture
def pair():
    ours, broker = green_socket.socketpair()
    broker.setblocking(False)
    yield ours, broker
    ours.close()
    broker.close()


def received(broker) -> bytes:
    """What the broker's end holds now, without waiting (the raw socket: no yield)."""
    try:
        return broker.fd.recv(1000)
    except BlockingIOError:
        return b""


def test_each_turn_of_the_hub_is_counted_once():
    turns = turns_of(eventlet.hubs.get_hub())
    assert turns_of(eventlet.hubs.get_hub()) is turns  # installed once per hub
    before = turns.count
    eventlet.sleep(0)
    # If this fails, eventlet's hub no longer calls self.fire_timers once per turn:
    # nameko_like.amqp.hub_turns needs another way to see a turn end.
    assert turns.count == before + 1
    eventlet.sleep(0)
    eventlet.sleep(0)
    assert turns.count == before + 3


def test_a_turns_first_write_leaves_at_once_and_the_rest_when_the_writer_yields(pair):
    ours, broker = pair
    writer = _CoalescingWriter(SimpleNamespace(sock=ours))
    eventlet.sleep(0)  # a fresh turn
    writer(b"first")
    assert received(broker) == b"first"
    writer(memoryview(bytearray(b"second")))
    writer(b"third")
    assert received(broker) == b""  # held: same turn
    eventlet.sleep(0)
    assert received(broker) == b"secondthird"
    writer(b"fourth")  # a new turn: straight out again
    assert received(broker) == b"fourth"


def test_a_write_schedules_no_hub_timer(pair):
    # A timer per write (to learn the turn is over) made the hub poll once
    # more with a zero time-out before sleeping, twice per RPC call.
    ours, broker = pair
    writer = _CoalescingWriter(SimpleNamespace(sock=ours))
    eventlet.sleep(0)
    hub = eventlet.hubs.get_hub()
    timers = len(hub.next_timers) + len(hub.timers)
    writer(b"lone reply")
    assert len(hub.next_timers) + len(hub.timers) == timers
    assert received(broker) == b"lone reply"


def test_writes_from_greenthreads_of_one_turn_go_out_together(pair):
    ours, broker = pair
    writer = _CoalescingWriter(SimpleNamespace(sock=ours))
    eventlet.sleep(0)
    for i in range(5):
        eventlet.spawn_n(writer, b"%d" % i)
    eventlet.sleep(0)  # all five run in this turn: one send, then one batch
    eventlet.sleep(0)
    assert received(broker) == b"01234"
    assert not writer.pending and not writer.flush_scheduled


def test_a_failed_send_fails_later_writes(pair):
    ours, broker = pair
    writer = _CoalescingWriter(SimpleNamespace(sock=ours))
    broker.close()
    ours.fd.shutdown(socket.SHUT_WR)
    eventlet.sleep(0)
    with pytest.raises(OSError):
        writer(b"lost")
    with pytest.raises(OSError):
        writer(b"also lost")


def test_a_write_larger_than_the_socket_takes_goes_out_whole_as_the_peer_reads(pair):
    # The raw socket takes what fits; eventlet's sendall waits for the rest.
    ours, broker = pair
    writer = _CoalescingWriter(SimpleNamespace(sock=ours))
    assert writer.raw is ours.fd
    data = bytes(range(256)) * 16384  # 4 MiB, more than a socket pair buffers
    got = bytearray()

    def read_all():
        broker.setblocking(True)
        while len(got) < len(data):
            got.extend(broker.recv(65536))

    reader = eventlet.spawn(read_all)
    eventlet.sleep(0)
    writer(data)
    reader.wait()
    assert bytes(got) == data
