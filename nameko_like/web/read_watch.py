"""Waiting for an HTTP client's next bytes without a hub registration and timer per wait.

A kept-alive connection's greenthread waits on its socket before almost every
request. eventlet's own wait (``trampoline``, under a green socket's
``recv``) registers the socket with the hub's ``epoll`` and unregisters it
after (two ``epoll_ctl`` calls and their bookkeeping), and, as every wait of
the engine has a time-out, schedules a hub timer and cancels it: all of it
for every wait, a dozen Python calls and objects each time.

A :class:`ReadWatch` keeps the socket registered between the waits of its
connection, and keeps one timer per connection that only moves when it has
to: a wait stores its deadline; the timer, armed for an earlier or equal
deadline, stays; when it fires and the waiter's deadline has moved on, it is
armed again for that one. A connection waiting for requests again and again
thus costs one timer per idle time-out, not one per request.

The registration is dropped (and made again by the next wait) when the socket
becomes readable while nobody waits on it, as the hub's ``epoll`` is level
triggered and would report it again on every turn, and when the socket is
handed to other code (a websocket reads it through eventlet's own waits,
which allow one reader per socket): see :meth:`ReadWatch.close`.

Only eventlet's public hub API is used (``add``/``remove`` of a listener,
``schedule_call_global``), as :mod:`nameko_like.amqp.socket_watch` does.
"""

from __future__ import annotations

import logging
from time import monotonic
from typing import Any

from nameko_like._eventlet import eventlet

_log = logging.getLogger(__name__)

_hubs = eventlet.hubs
_getcurrent = eventlet.getcurrent

#: What :meth:`ReadWatch.wait` returns when the deadline passed.
TIMED_OUT = False
#: What :meth:`ReadWatch.wait` returns when the socket is readable.
READABLE = True


class ReadWatch:
    """Waits, for one connection's greenthread, until its socket is readable or a deadline.

    Args:
        sock: the connection's eventlet green socket.
    """

    __slots__ = ("_fileno", "_hub", "_listener", "_sock", "_timer", "_timer_at",
                 "deadline", "waiter")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._fileno: int = sock.fileno()
        self._hub: Any = _hubs.get_hub()
        self._listener: Any = None
        self._timer: Any = None
        #: when the armed timer fires (hub clock, i.e. ``time.monotonic``)
        self._timer_at = 0.0
        #: when the wait in progress gives up (``time.monotonic``)
        self.deadline = 0.0
        #: the greenlet parked in :meth:`wait`, if any
        self.waiter: Any = None

    def wait(self, deadline: float) -> bool:
        """Park the caller until the socket is readable (:data:`READABLE`) or
        ``time.monotonic()`` reaches ``deadline`` (:data:`TIMED_OUT`).

        A wake-up may be spurious (the socket has nothing to read after
        all): callers read, and wait again until their deadline. Raises
        eventlet's ``IOClosed`` if the descriptor was closed under us.
        """
        if self.waiter is not None:
            raise RuntimeError("a second greenthread waits on an HTTP connection's socket")
        hub = self._hub
        listener = self._listener
        if listener is None or hub.listeners[hub.READ].get(self._fileno) is not listener:
            self._register()
        self.deadline = deadline
        if self._timer is None or self._timer_at > deadline:
            self._arm(deadline)
        self.waiter = _getcurrent()
        try:
            woken: bool = hub.switch()
        finally:
            self.waiter = None
        return woken is not TIMED_OUT

    def close(self) -> None:
        """Drop the registration and the timer (the next wait makes them again).

        For the connection's end, and before other code reads the socket
        through eventlet (which refuses a second reader of a socket).
        """
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self._unregister()

    def _register(self) -> None:
        self._unregister()
        hub = self._hub
        self._listener = hub.add(hub.READ, self._fileno, self._readable, self._descriptor_closed,
                                 self._sock._mark_as_closed)

    def _unregister(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        try:
            self._hub.remove(listener)
        except (KeyError, ValueError):
            # already dropped by the hub (its descriptor was closed and reused)
            _log.debug("read watch already removed from the hub")

    def _arm(self, deadline: float) -> None:
        timer = self._timer
        if timer is not None:
            timer.cancel()
        self._timer_at = deadline
        self._timer = self._hub.schedule_call_global(
            max(deadline - monotonic(), 0.0), self._expire)

    # Hub callbacks: they run in the hub's greenlet.

    def _expire(self) -> None:
        self._timer = None
        if self.waiter is None:
            return  # nobody waits: the next wait arms a timer of its own
        if monotonic() < self.deadline:
            # The deadline moved on since this timer was armed.
            self._arm(self.deadline)
            return
        self.waiter.switch(TIMED_OUT)

    def _readable(self, _fileno: int) -> None:
        waiter = self.waiter
        if waiter is None:
            # Nobody reads now (the connection is answering a request):
            # unanswered, the level-triggered registration would make the
            # hub report the socket on every turn.
            self._unregister()
            return
        waiter.switch(READABLE)

    def _descriptor_closed(self, *exc: Any) -> None:
        # The descriptor was closed and its number reused: this socket is done.
        self._listener = None
        waiter = self.waiter
        if waiter is not None:
            waiter.throw(*exc)
