"""PublishOutcome: what the broker said about one published message."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import PublishConfirmTimeout


class PublishOutcome:
    """Settles when the broker confirms, rejects or returns a message.

    A publish does not wait for its confirm: the caller gets this object and
    may ``wait()`` for it, or register callbacks that run when it settles.
    That is what lets many publishes share one round trip to the broker.
    """

    __slots__ = ("_callbacks", "_error", "_green_waiter", "_settled", "_waiter", "deadline",
                 "nacks", "returned", "route")

    def __init__(self) -> None:
        self._error: BaseException | None = None
        self._settled = False
        self._callbacks: list[Callable[[PublishOutcome], object]] | None = None
        self._waiter: threading.Event | None = None
        #: an eventlet Event, for greenthreads waiting (eventlet ships no types)
        self._green_waiter: Any = None
        #: why the broker returned the message as unroutable, if it did
        self.returned: str | None = None
        #: ``(exchange, routing_key)`` of a mandatory publish, which the
        #: publisher watches for returns until it settles
        self.route: tuple[str, str] | None = None
        #: ``time.monotonic()`` until which a refused (nacked) publish is
        #: sent again; 0: not at all (set by the publisher)
        self.deadline = 0.0
        #: how many times the broker refused it (``basic.nack``)
        self.nacks = 0

    @property
    def settled(self) -> bool:
        """Whether the broker has answered for this message."""
        return self._settled

    @property
    def error(self) -> BaseException | None:
        """Why the publish failed, once settled; None if it succeeded."""
        return self._error

    def settle(self, error: BaseException | None = None) -> None:
        """Record the broker's answer and run the callbacks (once)."""
        if self._settled:
            return
        self._error = error
        self._settled = True
        if self._waiter is not None:
            self._waiter.set()
        if self._green_waiter is not None:
            self._green_waiter.send(None)
        callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks or ():
            callback(self)

    def wait_or_wake(self) -> None:
        """In a greenthread: wait, with no time limit, until settled or ``wake()``-d.

        For publishers that have other reasons to look again (the broker
        blocked publishing) but should not pay for a timer on every wait.
        Raises nothing: the caller checks ``settled``.
        """
        if self._settled:
            return
        if self._green_waiter is None:
            self._green_waiter = eventlet.event.Event()
        self._green_waiter.wait()

    def wake(self) -> None:
        """Wake greenthreads in ``wait_or_wake`` (or ``wait(green=True)``) unsettled."""
        waiter = self._green_waiter
        if waiter is not None and not self._settled:
            self._green_waiter = None
            waiter.send(None)

    def add_callback(self, callback: Callable[[PublishOutcome], object]) -> None:
        """Call ``callback(outcome)`` when settled (at once if already)."""
        if self._settled:
            callback(self)
            return
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(callback)

    def wait(self, timeout: float | None = None,
             drain: Callable[[float | None], None] | None = None, green: bool = False) -> None:
        """Block until settled; raise the publish error, if any, or
        ``PublishConfirmTimeout`` once ``timeout`` passed unsettled.

        ``drain`` is used by publishers without a reader thread: it is called
        to read from the connection until this outcome settles. ``green``
        (where a reader greenthread settles outcomes) waits on eventlet's own
        event: a fraction of the cost of a monkey-patched ``threading.Event``,
        which counts when many workers each wait for their confirm.
        """
        if not self._settled:
            if drain is not None:
                drain(timeout)
            elif green:
                deadline = None if timeout is None else time.monotonic() + timeout
                while not self._settled:
                    # woken unsettled (see wake): wait on for what is left
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        break
                    if self._green_waiter is None:
                        self._green_waiter = eventlet.event.Event()
                    self._green_waiter.wait(remaining)
                if not self._settled:
                    raise PublishConfirmTimeout(f"no confirm from the broker within {timeout}s")
            else:
                if self._waiter is None:
                    self._waiter = threading.Event()
                if not self._waiter.wait(timeout):
                    raise PublishConfirmTimeout(f"no confirm from the broker within {timeout}s")
        if self._error is not None:
            raise self._error


def settled_outcome(error: BaseException | None = None) -> PublishOutcome:
    """An outcome that is already settled (transports without confirms)."""
    outcome = PublishOutcome()
    outcome.settle(error)
    return outcome
