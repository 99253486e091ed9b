"""The flag a call's caller waits on until its reply (or failure) is in.

A ``threading.Event`` per call costs a ``Condition`` and its lock before
anything happens, and in a monkey-patched process every ``wait`` and
``set`` goes through green locks and a waiter lock of its own. Most calls
need far less: a plain script's caller reads the connection itself and
only asks whether the flag is set, and replies to ``call_async`` are often
in before anyone waits. :class:`ReplyReady` is a plain flag until someone
actually waits. Where ``threading`` is monkey-patched (every thread is then
a greenthread) a waiter parks its greenthread in the hub and ``set``
schedules it back, as eventlet's own ``Event`` does but without an event
object, a lock or a waiter set per call (50 green-thread callers wait once
per call each); otherwise a ``threading.Event`` is made to wait on.
"""

from __future__ import annotations

import threading
from typing import Any

from nameko_like._eventlet import eventlet

#: guards making a waiter's event, so two OS threads waiting at once share one
_MAKING = threading.Lock()

_getcurrent = eventlet.greenthread.getcurrent
_get_hub = eventlet.hubs.get_hub


class ReplyReady:
    """Set once, when a call's reply (or failure) is in; ``wait`` blocks until then."""

    __slots__ = ("_event", "_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        #: the ``threading.Event`` OS-thread waiters wait on, made by the first one
        self._event: threading.Event | None = None
        #: greenthreads parked in ``wait`` (a monkey-patched process)
        self._waiters: list[Any] | None = None

    def is_set(self) -> bool:
        """Whether the reply (or a failure) is in."""
        return self._set

    def set(self) -> None:
        """Mark the reply in and wake whoever waits (once; later calls do nothing)."""
        if self._set:
            return
        # the flag first: a waiter that makes its event after this line
        # finds the flag set and does not wait on it
        self._set = True
        waiters = self._waiters
        if waiters:
            # woken from the hub, as eventlet's Event does: whoever sets
            # (the connection's reader) carries on reading meanwhile
            hub = _get_hub()
            for waiter in list(waiters):
                hub.schedule_call_global(0, self._wake, waiter, True)
        event = self._event
        if event is not None:
            event.set()

    def _wake(self, waiter: Any, ready: bool) -> None:
        """In the hub: resume ``waiter`` unless the timer or ``set`` already did."""
        waiters = self._waiters
        if waiters is not None and waiter in waiters:
            waiters.remove(waiter)
            waiter.switch(ready)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set, or ``timeout`` seconds; False on timeout."""
        if self._set:
            return True
        if eventlet.patcher.is_monkey_patched("thread"):
            return self._wait_green(timeout)
        with _MAKING:
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        if self._set:
            return True
        return event.wait(timeout)

    def _wait_green(self, timeout: float | None) -> bool:
        # Greenthreads only switch in the hub: nothing can set the flag
        # between the check in wait() and parking here.
        current = _getcurrent()
        hub = _get_hub()
        if self._waiters is None:
            self._waiters = [current]
        else:
            self._waiters.append(current)
        timer = None if timeout is None else hub.schedule_call_global(
            timeout, self._wake, current, False)
        try:
            woken: bool = hub.switch()
        finally:
            if timer is not None:
                timer.cancel()
            waiters = self._waiters
            if waiters is not None and current in waiters:  # killed while waiting
                waiters.remove(current)
        # a timer due in the same turn as the set may come first
        return woken or self._set
