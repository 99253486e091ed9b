"""Finding what a test left running: started containers and live greenthreads.

Used by the pytest plugin's leak check; imported only once a test runs, so
that loading the plugin imports neither eventlet nor nameko_like's core.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Iterable
from types import FrameType
from typing import Any, Protocol, TypeVar

from nameko_like._eventlet import eventlet
from nameko_like.containers import ServiceContainer

_log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: A live eventlet greenthread (eventlet ships no type information).
GreenThread = Any


class Killable(Protocol):
    """What :func:`kill_all` kills: containers, runners, greenthreads."""

    def kill(self) -> Any:
        """Stop at once."""

#: Seconds the leak check lets greenthreads and containers finish on their own.
LEAK_GRACE_PERIOD = 1.0

_EVENTLET_DIR = os.path.dirname(eventlet.__file__) + os.sep


def _with_subclasses(cls: type[_T]) -> list[type[_T]]:
    """``cls`` and all its subclasses, however deep."""
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_with_subclasses(sub))
    return found


def running() -> tuple[set[GreenThread], set[ServiceContainer]]:
    """Return the live greenthreads and the running containers."""
    thread_classes: list[type[Any]] = _with_subclasses(eventlet.greenthread.GreenThread)
    container_classes = _with_subclasses(ServiceContainer)
    threads: set[GreenThread] = set()
    containers: set[ServiceContainer] = set()
    # Instances refer to their class, so one C-level pass over the heap finds
    # them (faster than filtering gc.get_objects() in Python).
    for obj in gc.get_referrers(*thread_classes, *container_classes):
        kind = type(obj)
        if kind in thread_classes and not obj.dead:
            threads.add(obj)
        elif kind in container_classes and obj.running:
            containers.add(obj)
    return threads, containers


def _frame_summary(frame: FrameType) -> str:
    code = frame.f_code
    return f"{getattr(code, 'co_qualname', code.co_name)} ({code.co_filename}:{frame.f_lineno})"


def describe_thread(thread: GreenThread) -> str:
    """Name the function a greenthread runs and where it waits."""
    frame = thread.gr_frame
    if frame is None:
        return f"{thread!r} (not started)"
    stack: list[FrameType] = []
    while frame is not None:
        stack.append(frame)
        frame = frame.f_back
    # The outermost frame is GreenThread.main; the one above it is the
    # function the thread was spawned with.
    entry = stack[-2] if len(stack) > 1 else stack[-1]
    # Where it waits, as the caller of eventlet's blocking call sees it.
    waiting = next((f for f in stack if not f.f_code.co_filename.startswith(_EVENTLET_DIR)), entry)
    description = _frame_summary(entry)
    if waiting is not entry:
        description += f", waiting in {_frame_summary(waiting)}"
    return description


def leaks(
    before: tuple[set[GreenThread], set[ServiceContainer]],
) -> tuple[set[GreenThread], set[ServiceContainer]]:
    """What runs now that did not before, after a grace period to finish."""
    deadline = time.monotonic() + LEAK_GRACE_PERIOD
    while True:
        threads, containers = running()
        threads -= before[0]
        containers -= before[1]
        if not (threads or containers) or time.monotonic() >= deadline:
            return threads, containers
        eventlet.sleep(0.02)


def kill_all(killables: Iterable[Killable]) -> None:
    """Kill every item, even if some raise; then re-raise the first error."""
    errors: list[Exception] = []
    for item in killables:
        try:
            item.kill()
        except Exception as exc:  # noqa: BLE001 - the rest must still be killed
            errors.append(exc)
    if errors:
        raise errors[0]
