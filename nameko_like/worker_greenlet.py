"""Run a worker in a child greenlet of the calling greenthread.

An @http request's greenthread only waits for its worker: spawning a
greenthread for it costs a spawn and two switches through the hub. Running
the worker in the request's own greenthread would save those but share its
greenlet-local state (``threading.local`` under monkey-patching is keyed by
the current greenlet) with every other request on the same keep-alive
connection, which behind a reverse proxy means other users' requests. A
child greenlet, switched to directly, gives each worker greenlet-local state
of its own and still needs no hub round trip.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nameko_like._eventlet import eventlet

# greenlet comes with eventlet (which re-exports it): no dependency of our own
_greenlet: Any = eventlet.greenthread.greenlet

__all__ = ["WorkerGreenlet", "caller_of", "run_in_child_greenlet"]


class WorkerGreenlet(_greenlet.greenlet):  # type: ignore[misc]  # untyped, via eventlet
    """A worker's greenlet, run by (and returning to) the greenthread in ``caller``.

    Built as a greenlet is, ``WorkerGreenlet(run, parent)``; whoever makes
    one sets ``caller`` and ``finished`` (no ``__init__`` of ours: one is
    made per request).
    """

    # slots: no instance dict made per request
    __slots__ = ("caller", "finished")

    #: the greenthread waiting for this worker (its parent changes: see below)
    caller: Any
    #: whether the worker's function has returned or raised (a flag is
    #: cheaper to read than the greenlet's ``dead``)
    finished: bool


def caller_of(current: Any) -> Any:
    """The greenthread ``current`` works for: its caller if a worker greenlet, else itself."""
    return current.caller if isinstance(current, WorkerGreenlet) else current


def _run_child(child: WorkerGreenlet, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
    """The body of a worker greenlet (given its arguments by its first switch)."""
    try:
        fn(*args)
    finally:
        child.finished = True
        # eventlet's hub makes itself the parent of a greenlet that
        # blocks: give the caller back so the worker's end resumes it.
        if child.parent is not child.caller:
            child.parent = child.caller


def run_in_child_greenlet(registry: dict[Any, Any], key: Any,
                          fn: Callable[..., object], *args: Any) -> None:
    """Run ``fn(*args)`` in a new greenlet, child of the caller; return when it ended.

    The child is put in ``registry[key]`` before it starts: killing the child (it
    is a greenlet, ``eventlet.kill`` throws into it) ends the worker, and the
    caller then raises the ``GreenletExit`` too, as the worker's greenthread
    would have. An exception thrown into the caller while the worker runs
    (its greenthread killed, a timeout of its own) kills the worker first.
    Exceptions ``fn`` lets out propagate to the caller.
    """
    caller = _greenlet.getcurrent()
    child = WorkerGreenlet(_run_child, caller)
    child.caller = caller
    child.finished = False
    registry[key] = child
    try:
        # Started at once: nothing can kill it before its body runs, so
        # its ``finished`` is always set when it ends.
        ended = child.switch(child, fn, args)
        while not child.finished:
            # a stray wake-up of the caller: the worker's end switches to it
            ended = _get_hub().switch()
    except BaseException:
        if not child.dead:
            # the worker goes with its caller, tearing down as it goes
            child.throw()
        raise
    finally:
        # A switch or throw into a dead greenlet goes to its parent: a
        # timeout the worker armed and never cancelled must reach the hub
        # (which reports it), as a spawned worker's would, not the caller,
        # by then serving the connection's next request.
        if child.finished:
            child.parent = _get_hub().greenlet
    if isinstance(ended, _GREENLET_EXIT):
        raise ended


_GREENLET_EXIT = _greenlet.GreenletExit
_get_hub = eventlet.hubs.get_hub
