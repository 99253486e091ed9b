"""The flag a call's caller waits on until its reply (or failure) is in.

A ``threading.Event`` per call costs a ``Condition`` and its lock before
anything happens, and in a monkey-patched process every ``wait`` and
``set`` goes through green locks and a waiter lock of its own. Most calls
need far less: a plain script's caller reads the connection itself and
only asks whether the flag is set, and replies to ``call_async`` are often
in before anyone waits. :class:`ReplyReady` is a plain flag until someone
actually waits; then it makes an event to wait on: eventlet's own (a
fraction of the cost) where ``threading`` is monkey-patched, and thus every
thread is a greenthread, a ``threading.Event`` otherwise.
"""

from __future__ import annotations

import threading
from typing import Any

from nameko_like._eventlet import eventlet

#: guards making a waiter's event, so two threads waiting at once share one
_MAKING = threading.Lock()


class ReplyReady:
    """Set once, when a call's reply (or failure) is in; ``wait`` blocks until then."""

    __slots__ = ("_event", "_green", "_set")

    def __init__(self) -> None:
        self._set = False
        #: the event waiters wait on, made by the first one
        self._event: Any = None
        self._green = False

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
        event = self._event
        if event is not None:
            if self._green:
                event.send(True)
            else:
                event.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until set, or ``timeout`` seconds; False on timeout."""
        if self._set:
            return True
        with _MAKING:
            if self._event is None:
                self._green = eventlet.patcher.is_monkey_patched("thread")
                self._event = eventlet.event.Event() if self._green else threading.Event()
            event = self._event
        if self._set:
            return True
        if self._green:
            return bool(event.wait(timeout))
        ready: bool = event.wait(timeout)
        return ready
