"""Wait, in a test, until something has been called.

Example::

    with wait_for_call(payments, "charge") as result:
        trigger_a_payment()
    # the block exits only once payments.charge() has returned
    assert result.get() == "ok"
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from unittest import mock

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import NamekoLikeException
from nameko_like.protocols import ExcInfo
from nameko_like.testing._mock import DEFAULT_SENTINELS

if TYPE_CHECKING:
    from nameko_like.worker_context import WorkerContext

_log = logging.getLogger(__name__)

#: ``callback(args, kwargs, result, exc_info)``: return True to stop waiting.
CallCallback = Callable[[tuple[Any, ...], dict[str, Any], Any, ExcInfo | None], Any]


class WaitTimeout(NamekoLikeException):
    """What a test waited for did not happen in time."""


class WaitResult:
    """The outcome of a call waited for: a result, or the error it raised.

    Only the first outcome sent is kept; ``get()`` returns the result or
    re-raises the error.
    """

    class NotReady(NamekoLikeException):
        """``get()`` was called before any outcome was sent."""

    def __init__(self) -> None:
        self.result: Any = None
        self.exc_info: ExcInfo | None = None
        #: The worker whose outcome this is, where the waiter knows it
        #: (``entrypoint_waiter`` sets it, as Nameko's does).
        self.worker_ctx: WorkerContext | None = None
        self._ready = eventlet.event.Event()

    @property
    def has_result(self) -> bool:
        """Whether an outcome was sent."""
        return bool(self._ready.ready())

    def send(self, result: Any, exc_info: ExcInfo | None = None) -> None:
        """Record an outcome; later ones are ignored."""
        if self.has_result:
            return
        self.result = result
        self.exc_info = exc_info
        self._ready.send(True)

    def get(self) -> Any:
        """Return the result, or re-raise the error the call raised."""
        if not self.has_result:
            raise WaitResult.NotReady("no call has completed yet")
        if self.exc_info is not None:
            raise self.exc_info[1].with_traceback(self.exc_info[2])
        return self.result

    def wait(self, timeout: float | None = None) -> bool:
        """Block until an outcome is sent; False if ``timeout`` passed first."""
        return bool(self._ready.wait(timeout))


def _is_exception(value: Any) -> bool:
    return isinstance(value, BaseException) or (
        isinstance(value, type) and issubclass(value, BaseException)
    )


def _run_side_effect(
    mock_method: Any, effect: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Do what ``mock_method`` would have done with side effect ``effect``."""
    if _is_exception(effect):
        raise effect
    if effect is None:
        return mock_method.return_value
    if callable(effect):
        result = effect(*args, **kwargs)
        if any(result is sentinel for sentinel in DEFAULT_SENTINELS):
            return mock_method.return_value
        return result
    # Mock stores an iterable side effect as an iterator of successive results.
    item = next(effect)
    if _is_exception(item):
        raise item
    return item


@contextmanager
def wait_for_call(
    obj: Any,
    target: str | None = None,
    callback: CallCallback | None = None,
    timeout: float | None = None,
) -> Iterator[WaitResult]:
    """Wait, when the ``with`` block exits, until a method has been called.

    Two forms:

    * ``wait_for_call(obj, "name")`` (as in Nameko) wraps ``obj.name`` for
      the duration of the block; ``obj`` may be anything.
    * ``wait_for_call(mock_method)`` waits for a mock (e.g. ``service.db.save``)
      by wrapping its side effect, which it restores afterwards.

    The first call that returns (or raises) and for which
    ``callback(args, kwargs, result, exc_info)`` is true (every call, without
    a callback) ends the wait; its outcome is yielded as a :class:`WaitResult`.
    The wrapped method still behaves exactly as before.

    Raises:
        WaitTimeout: no such call within ``timeout`` seconds (None: no limit).
    """
    if target is not None and not isinstance(target, str):
        raise TypeError(
            "wait_for_call(obj, target): target must be the name of a method of obj; "
            "to wait for a mock method pass the callback by keyword: "
            "wait_for_call(mock_method, callback=...)"
        )
    outcome = WaitResult()

    def record(
        args: tuple[Any, ...], kwargs: dict[str, Any], result: Any, exc_info: ExcInfo | None
    ) -> None:
        if callback is None or callback(args, kwargs, result, exc_info):
            outcome.send(result, exc_info)

    def observe(call: Callable[[], Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            result = call()
        except Exception as exc:
            record(args, kwargs, None, (type(exc), exc, exc.__traceback__))
            raise
        record(args, kwargs, result, None)
        return result

    if target is not None:
        original = getattr(obj, target)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return observe(lambda: original(*args, **kwargs), args, kwargs)

        with mock.patch.object(obj, target, new=wrapper):
            yield outcome
            _wait(outcome, timeout, f"{target!r} of {obj!r}")
        return

    effect = obj.side_effect

    def side_effect(*args: Any, **kwargs: Any) -> Any:
        return observe(lambda: _run_side_effect(obj, effect, args, kwargs), args, kwargs)

    # Not mock.patch: on exit it leaves a mock's side_effect as patched.
    obj.side_effect = side_effect
    try:
        yield outcome
        _wait(outcome, timeout, repr(obj))
    finally:
        obj.side_effect = effect


def _wait(outcome: WaitResult, timeout: float | None, what: str) -> None:
    if not outcome.wait(timeout):
        raise WaitTimeout(f"{what} was not called (as awaited) within {timeout}s")
