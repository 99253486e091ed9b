"""PublishOutcome: what the broker said about one published message."""

from __future__ import annotations

import threading
from collections.abc import Callable

from nameko_like.exceptions import PublishConfirmTimeout


class PublishOutcome:
    """Settles when the broker confirms, rejects or returns a message.

    A publish does not wait for its confirm: the caller gets this object and
    may ``wait()`` for it, or register callbacks that run when it settles.
    That is what lets many publishes share one round trip to the broker.
    """

    __slots__ = ("_callbacks", "_error", "_settled", "_waiter", "returned", "route")

    def __init__(self) -> None:
        self._error: BaseException | None = None
        self._settled = False
        self._callbacks: list[Callable[[PublishOutcome], object]] | None = None
        self._waiter: threading.Event | None = None
        #: why the broker returned the message as unroutable, if it did
        self.returned: str | None = None
        #: ``(exchange, routing_key)`` of a mandatory publish, which the
        #: publisher watches for returns until it settles
        self.route: tuple[str, str] | None = None

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
        callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks or ():
            callback(self)

    def add_callback(self, callback: Callable[[PublishOutcome], object]) -> None:
        """Call ``callback(outcome)`` when settled (at once if already)."""
        if self._settled:
            callback(self)
            return
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(callback)

    def wait(self, timeout: float | None = None,
             drain: Callable[[float | None], None] | None = None) -> None:
        """Block until settled; raise the publish error, if any, or
        ``PublishConfirmTimeout`` once ``timeout`` passed unsettled.

        ``drain`` is used by publishers without a reader thread: it is called
        to read from the connection until this outcome settles.
        """
        if not self._settled:
            if drain is not None:
                drain(timeout)
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
