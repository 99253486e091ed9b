"""SocketWatch: a socket that stays registered with eventlet's hub between a reader's waits.

Real green socket pairs and eventlet's real hub: the registration is read
from the hub's own listener table, which is what epoll is told about.
"""

from __future__ import annotations

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.amqp.socket_watch import SocketWatch

green_socket = eventlet.green.socket


@pytest.fixture
def pair():
    ours, broker = green_socket.socketpair()
    yield ours, broker
    ours.close()
    broker.close()


def registered(sock) -> object | None:
    hub = eventlet.hubs.get_hub()
    return hub.listeners[hub.READ].get(sock.fileno())


def read_when_ready(watch: SocketWatch, sock, got: list[bytes]) -> None:
    watch.wait()
    got.append(sock.fd.recv(100))


def read_in_a_loop(watch: SocketWatch, sock, got: list[bytes], rounds: int) -> None:
    watch.keep, watch.keeper = True, eventlet.getcurrent()  # as keep_watching does
    for _ in range(rounds):
        read_when_ready(watch, sock, got)


def until(condition) -> None:
    with eventlet.Timeout(2):
        while not condition():
            eventlet.sleep(0.001)


def test_a_kept_watch_stays_registered_between_waits(pair):
    ours, broker = pair
    watch = SocketWatch.of(ours)
    assert watch is not None
    got: list[bytes] = []
    reader = eventlet.spawn(read_in_a_loop, watch, ours, got, 3)
    listeners = []
    for n in range(3):
        until(lambda: watch.waiter is not None)  # the reader parks
        listener = registered(ours)
        assert listener is not None
        listeners.append(listener)
        broker.sendall(b"frame %d" % n)
        until(lambda n=n: len(got) == n + 1)
        assert registered(ours) is listener  # still registered after the wait
    reader.wait()
    assert got == [b"frame 0", b"frame 1", b"frame 2"]
    assert listeners[0] is listeners[1] is listeners[2]  # registered once
    watch.release()
    assert registered(ours) is None


def test_another_greenthreads_wait_does_not_stay_registered(pair):
    # The loop's reader is busy elsewhere; a close reads its Close-Ok
    # through the watch. Its registration must not outlive its wait: the
    # descriptor is about to be closed (and its number reused).
    ours, broker = pair
    watch = SocketWatch(ours)
    watch.keep, watch.keeper = True, eventlet.spawn(eventlet.sleep, 1)  # a busy loop reader
    got: list[bytes] = []
    closer = eventlet.spawn(read_when_ready, watch, ours, got)
    eventlet.sleep(0)
    assert registered(ours) is not None
    broker.sendall(b"close-ok")
    closer.wait()
    assert got == [b"close-ok"]
    assert registered(ours) is None
    watch.keeper.kill()


def test_a_wait_that_is_not_kept_unregisters_after_itself(pair):
    ours, broker = pair
    watch = SocketWatch(ours)
    got: list[bytes] = []
    reader = eventlet.spawn(read_when_ready, watch, ours, got)
    eventlet.sleep(0)
    assert registered(ours) is not None
    broker.sendall(b"reply")
    reader.wait()
    assert got == [b"reply"]
    assert registered(ours) is None


def test_data_nobody_waits_for_drops_the_registration(pair):
    # epoll reports unread data on every turn: a registration nobody
    # answers would make the hub spin
    ours, broker = pair
    watch = SocketWatch(ours)
    watch.keep = True
    got: list[bytes] = []
    reader = eventlet.spawn(read_when_ready, watch, ours, got)
    watch.keeper = reader  # the loop's reader
    eventlet.sleep(0)
    broker.sendall(b"one")
    reader.wait()
    assert registered(ours) is not None
    broker.sendall(b"two")  # the reader is not waiting now
    eventlet.sleep(0.05)  # hub turns: the socket is reported readable
    assert registered(ours) is None
    watch.wait()  # registers again; the data is there
    assert ours.fd.recv(100) == b"two"
    watch.release()
    assert registered(ours) is None


def test_release_leaves_another_greenthreads_wait_registered(pair):
    # A reader loop ends while another greenthread (closing the connection)
    # already waits on the same socket: that wait must still be woken.
    ours, broker = pair
    watch = SocketWatch(ours)
    watch.keep = True
    got: list[bytes] = []
    closer = eventlet.spawn(read_when_ready, watch, ours, got)
    eventlet.sleep(0)
    watch.release()  # the loop's finally, while the closer waits
    assert registered(ours) is not None
    broker.sendall(b"close-ok")
    with eventlet.Timeout(2):
        closer.wait()
    assert got == [b"close-ok"]
    assert registered(ours) is None


def test_a_timed_wait_times_out_through_eventlet(pair):
    ours, _broker = pair
    watch = SocketWatch(ours)
    watch.keep = True
    ours.settimeout(0.05)
    with pytest.raises(TimeoutError):
        watch.wait()
    assert registered(ours) is None


def test_a_second_simultaneous_reader_is_refused_as_eventlet_does(pair):
    ours, broker = pair
    watch = SocketWatch(ours)
    got: list[bytes] = []
    first = eventlet.spawn(read_when_ready, watch, ours, got)
    eventlet.sleep(0)
    with pytest.raises(RuntimeError, match="Second simultaneous read"):
        watch.wait()
    broker.sendall(b"for the first")
    first.wait()
    assert got == [b"for the first"]


def test_a_plain_socket_gets_no_watch():
    plain, other = eventlet.patcher.original("socket").socketpair()
    try:
        assert SocketWatch.of(plain) is None
    finally:
        plain.close()
        other.close()
