"""Wait for an AMQP socket to be readable without re-registering it each time.

Eventlet's socket reads wait through ``trampoline``, which registers the
socket with the hub's ``epoll`` before the wait and unregisters it after:
two ``epoll_ctl`` system calls and a dozen Python calls per wait, and a
service waits twice per RPC call (for the request, then for the broker's
confirm of the reply). While a connection's reader greenthread loops over
it (:func:`keep_watching`), its :class:`SocketWatch` registers the socket
once and leaves it registered between waits; other waits (a handshake, a
close) register and unregister around themselves, as eventlet's do.

A kept registration is dropped when the socket becomes readable and nobody
waits (the reader is busy elsewhere): epoll reports a socket as long as it
holds unread data, and a registration nobody answers would make the hub
spin. The next wait registers again. Waits with a time-out go through
eventlet's own wait (after the registration was dropped: the hub allows
one reader per socket).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from nameko_like._eventlet import eventlet

_log = logging.getLogger(__name__)

_hubs = eventlet.hubs
_getcurrent = eventlet.getcurrent
_IOClosed = _hubs.IOClosed
_GreenSocket = eventlet.greenio.GreenSocket


class SocketWatch:
    """A lasting read registration of one eventlet ``GreenSocket`` with the hub.

    One greenthread waits at a time (as with eventlet's own waits); a
    second simultaneous waiter goes through eventlet's wait, which refuses
    it as it always did.
    """

    __slots__ = ("hub", "keep", "keeper", "listener", "sock", "waiter")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.listener: Any = None
        self.hub: Any = None
        #: the greenlet parked in wait(), if any
        self.waiter: Any = None
        #: whether the registration outlives a wait (a reader loops over the socket)
        self.keep = False
        #: the looping reader's greenlet: only its waits leave the registration in place
        self.keeper: Any = None

    @classmethod
    def of(cls, sock: Any) -> SocketWatch | None:
        """A watch for ``sock`` if it is an eventlet socket that blocks, else None."""
        if isinstance(sock, _GreenSocket) and not sock.act_non_blocking:
            return cls(sock)
        return None

    def wait(self) -> None:
        """Block the calling greenthread until the socket is readable (or closed).

        Raises eventlet's ``IOClosed`` if the socket was closed, as
        eventlet's own wait does.
        """
        sock = self.sock
        if self.waiter is not None:
            # eventlet refuses a second reader, as it always did
            sock._read_trampoline()
            return
        if sock.gettimeout() is not None:
            # a timed wait needs eventlet's timer: wait its way, registered its way
            self.stop()
            sock._read_trampoline()
            return
        if sock._closed:
            self.stop()
            raise _IOClosed()
        hub = _hubs.get_hub()
        listener = self.listener
        if listener is None or hub is not self.hub or hub.listeners[hub.READ].get(
                listener.fileno) is not listener:
            self._register(hub)
        self.waiter = _getcurrent()
        try:
            hub.switch()
        except _IOClosed:
            # the descriptor was closed and reused: this socket is done
            sock._mark_as_closed()
            self.listener = None
            raise
        finally:
            self.waiter = None
            # Only the looping reader's registration outlives its wait: one
            # left by another greenthread (a close reading its Close-Ok) would
            # stay behind for a descriptor that is about to be closed.
            if not self.keep or self.keeper is not _getcurrent() or sock._closed:
                self.stop()

    def _register(self, hub: Any) -> None:
        self.stop()
        self.hub = hub
        self.listener = hub.add(hub.READ, self.sock.fileno(), self._readable, self._closed,
                                self.sock._mark_as_closed)

    def _readable(self, _fileno: int) -> None:
        # Runs in the hub.
        waiter = self.waiter
        if waiter is None:
            # nobody reads now: stop, or the hub would spin on the unread data
            self.stop()
            return
        waiter.switch()

    def _closed(self, *exc: Any) -> None:
        # Runs in the hub when the descriptor was closed and reused.
        self.listener = None
        waiter = self.waiter
        if waiter is not None:
            waiter.throw(*exc)

    def release(self) -> None:
        """The looping reader is done: registrations no longer outlive a wait."""
        self.keep = False
        self.keeper = None
        if self.waiter is None:
            self.stop()
        # else another greenthread waits on the registration; its wait ends it

    def stop(self) -> None:
        """Unregister the socket from the hub (the next wait registers it again)."""
        listener, self.listener = self.listener, None
        if listener is None or self.hub is None:
            return
        try:
            self.hub.remove(listener)
        except (KeyError, ValueError):
            # already dropped by the hub (its descriptor was closed and reused)
            _log.debug("socket watch already removed from the hub")


def _nothing() -> None:
    pass


def keep_watching(connection: Any) -> Callable[[], None]:
    """Keep a kombu ``connection``'s socket registered between waits.

    For the greenthread that reads ``connection`` in a loop; it calls the
    returned function when it stops (the watch's ``release``, or nothing
    where the connection has no watch: not tuned, not an eventlet socket).
    """
    # ``_transport``: py-amqp's ``transport`` property connects a closed connection again
    transport = getattr(getattr(connection, "_connection", None), "_transport", None)
    watch = getattr(getattr(transport, "_read", None), "watch", None)
    if not isinstance(watch, SocketWatch):
        return _nothing
    watch.keep = True
    watch.keeper = _getcurrent()
    return watch.release
