"""Helpers of the container's life cycle: running one action on many
extensions at once, and exception info from a caught exception."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from nameko_like._eventlet import eventlet
from nameko_like.protocols import ExcInfo

_T = TypeVar("_T")


def _capture(action: Callable[[_T], object], item: _T) -> BaseException | None:
    """Run ``action(item)``; return its exception instead of raising it.

    A greenthread that dies with an exception gets its traceback printed by
    eventlet's hub, on top of whatever we log; returning it avoids that.
    """
    try:
        action(item)
    except Exception as exc:  # noqa: BLE001 - handed to the caller, which re-raises it
        return exc
    return None


def run_on_all(extensions: Iterable[_T], action: Callable[[_T], object]) -> None:
    """Run ``action`` on every item concurrently; re-raise the first error."""
    items = list(extensions)
    if not items:
        return
    if len(items) == 1:
        action(items[0])
        return
    threads = [eventlet.spawn(_capture, action, item) for item in items]
    errors = [thread.wait() for thread in threads]
    first_error = next((error for error in errors if error is not None), None)
    if first_error is not None:
        raise first_error



def exc_info_of(exc: BaseException) -> ExcInfo:
    """What ``sys.exc_info()`` gives while ``exc`` is being handled."""
    return type(exc), exc, exc.__traceback__
