"""Run a worker in a child greenlet of the calling greenthread.

An @http request's greenthread only waits for its worker: spawning a
greenthread for it costs a spawn and two switches through the hub. Running
the worker in the request's own greenthread would save those but share its
greenlet-local state (``threading.local`` under monkey-patching is keyed by
the current greenlet) with every other request on the same keep-alive
connection, which behind a reverse proxy means other users' requests. A
child greenlet, switched to directly, gives each worker greenlet-local state
of its own and still needs no hub round trip.

Making a greenlet is the dearest part of that (CPython maps a frame stack
for each one and unmaps it when it dies: about a third of an @http
request's CPU time). So a worker greenlet that ends a worker with nothing
left pointing at it waits in :class:`IdleWorkerGreenlets` to run the next
one: nothing that could tell it from a new greenlet (a ``threading.local``
it has values in, a timer that would throw into it, an attribute set on
it, a reference kept anywhere) survives, and its ``contextvars`` start
empty again. A greenlet that fails those checks is dropped, as every worker
greenlet was before.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any
from weakref import getweakrefcount, ref

from nameko_like._eventlet import eventlet

_log = logging.getLogger(__name__)

# greenlet comes with eventlet (which re-exports it): no dependency of our own
_greenlet: Any = eventlet.greenthread.greenlet

__all__ = ["IdleWorkerGreenlets", "WorkerGreenlet", "caller_of", "run_in_child_greenlet",
           "spawn_in_worker_greenlet"]


class WorkerGreenlet(_greenlet.greenlet):  # type: ignore[misc]  # untyped, via eventlet
    """A worker's greenlet, run by (and returning to) the greenthread in ``caller``.

    Built as a greenlet is, ``WorkerGreenlet(run, parent)``; whoever makes
    one sets ``caller``, ``finished``, ``idle`` and ``job`` (no ``__init__`` of ours: one is
    made per request).
    """

    # slots: no instance dict made per request
    __slots__ = ("caller", "finished", "idle", "job")

    #: the greenthread waiting for this worker (its parent changes: see
    #: below), or the hub's greenlet for a spawned worker
    caller: Any
    #: where it waits for its next worker once it finished one (weakly:
    #: a parked greenlet is never collected by ``gc``, so it must not be
    #: part of a reference cycle)
    idle: ref[IdleWorkerGreenlets] | None
    #: the next worker's ``(function, arguments)``, until it starts
    job: tuple[Callable[..., object], tuple[Any, ...]] | None
    #: whether the worker's function has returned or raised (a flag is
    #: cheaper to read than the greenlet's ``dead``)
    finished: bool


def caller_of(current: Any) -> Any:
    """The greenthread ``current`` works for: its caller if a worker greenlet, else itself."""
    return current.caller if isinstance(current, WorkerGreenlet) else current


def _serve() -> None:
    """The body of a worker greenlet: run a worker, then wait for the next one.

    Each worker comes in the greenlet's ``job`` (not as the arguments of
    its first switch, which greenlet would hold for as long as the
    greenlet lives). Once it put itself among its ``idle`` ones, the
    greenlet hands the worker's end to its caller, and waits there. No
    local refers to the greenlet itself while it waits (its reference
    count is how it is known to be unremembered).
    """
    while True:
        current = _getcurrent()
        job = current.job
        if job is None:
            # A switch with no worker: a timer a finished worker left armed
            # for its greenlet, say. Ignored, as a switch into a dead
            # greenlet would be, and the greenlet waits on.
            parent = current.parent
            del current
            parent.switch()
            continue
        fn, args = job
        current.job = job = None
        del current
        try:
            fn(*args)
        finally:
            fn = args = None  # the worker's objects go now
            current = _getcurrent()
            current.finished = True
            # eventlet's hub makes itself the parent of a greenlet that
            # blocks: give the caller back so an error (or a kill) the
            # worker ends with resumes it.
            if current.parent is not current.caller:
                current.parent = current.caller
            del current
        current = _getcurrent()
        # (held while parked: keeps the last caller alive until the next
        # worker, e.g. a connection's finished greenthread)
        to_caller = current.caller.switch
        idle = None if current.idle is None else current.idle()
        if idle is not None:
            idle.keep(current)
        del current, idle
        to_caller(None)


class IdleWorkerGreenlets:
    """Worker greenlets that finished their worker and may run another.

    One per container (greenlets belong to the OS thread that made them,
    and a container's workers all run in its hub's thread); at most
    ``limit`` are kept, the container's ``max_workers``. :meth:`clear`
    drops them (the greenlets end: nothing else refers to them) and keeps
    none from then on (a container's workers may still end after it
    stopped: a worker that stopped it, one that would not die).
    """

    __slots__ = ("__weakref__", "_idle", "limit")

    def __init__(self, limit: int) -> None:
        self._idle: list[WorkerGreenlet] = []
        self.limit = limit

    def __len__(self) -> int:
        return len(self._idle)

    def take(self) -> WorkerGreenlet | None:
        """An idle worker greenlet nothing remembers, or ``None`` if none waits.

        Checked here rather than when the greenlet finished its worker: the
        hub's frame that last resumed a worker that blocked still holds it
        until the hub runs again.
        """
        global _UNREMEMBERED
        idle = self._idle
        if idle and not _UNREMEMBERED:
            _UNREMEMBERED = _references_of_an_unremembered_greenlet()
        while idle:
            child = idle.pop()
            if (_references(child) <= _UNREMEMBERED
                    # a threading.local with values for it (eventlet keys
                    # them by greenlet, weakly), or anyone's weak reference
                    and not getweakrefcount(child)
                    # attributes a worker set on its greenlet
                    and not child.__dict__
                    and not child.dead):  # (killed while it waited)
                return child
            # Dropped: it ends when the last reference goes (a timer that
            # throws into it ends it at once, the hub reporting the error).
        return None

    def keep(self, child: WorkerGreenlet) -> None:
        """Keep ``child``, which just finished a worker, to run another (see :meth:`take`)."""
        if len(self._idle) < self.limit:
            child.caller = None
            # contextvars start empty, as in a new greenlet
            child.gr_context = None
            self._idle.append(child)

    def clear(self) -> None:
        """Drop every idle worker greenlet, and keep none from now on."""
        self.limit = 0
        self._idle.clear()


def run_in_child_greenlet(registry: dict[Any, Any], key: Any,
                          fn: Callable[..., object], *args: Any,
                          idle: IdleWorkerGreenlets | None = None) -> None:
    """Run ``fn(*args)`` in a worker greenlet, child of the caller; return when it ended.

    The greenlet is an idle one from ``idle`` if one waits there, else a
    new one; it goes back to ``idle`` when ``fn`` returned and nothing
    remembers it. The child is put in ``registry[key]`` before it starts:
    killing the child (it is a greenlet, ``eventlet.kill`` throws into it)
    ends the worker, and the caller then raises the ``GreenletExit`` too,
    as the worker's greenthread would have. An exception thrown into the
    caller while the worker runs (its greenthread killed, a timeout of its
    own) kills the worker first. Exceptions ``fn`` lets out propagate to
    the caller.
    """
    caller = _getcurrent()
    child = None if idle is None else idle.take()
    if child is None:
        child = WorkerGreenlet(_serve, caller)
        child.idle = None if idle is None else ref(idle)
    else:
        child.parent = caller
    child.caller = caller
    child.finished = False
    child.job = (fn, args)
    registry[key] = child
    try:
        # Started at once: nothing can kill it before its body runs, so
        # its ``finished`` is always set when it ends.
        ended = child.switch()
        while not child.finished:
            # a stray wake-up of the caller: the worker's end switches to it
            ended = _get_hub().switch()
    except BaseException:
        if not child.finished:
            # the worker goes with its caller, tearing down as it goes
            child.throw()
        raise
    finally:
        # A switch or throw into a finished greenlet goes to its parent: a
        # timeout the worker armed and never cancelled must reach the hub
        # (which reports it), as a spawned worker's would, not the caller,
        # by then serving the connection's next request.
        if child.finished:
            child.parent = _get_hub().greenlet
    if isinstance(ended, _GREENLET_EXIT):
        raise ended


def spawn_in_worker_greenlet(idle: IdleWorkerGreenlets, fn: Callable[..., object],
                             *args: Any) -> WorkerGreenlet:
    """``eventlet.spawn_n(fn, *args)`` in an idle worker greenlet, or a new one.

    The greenlet is scheduled to run ``fn`` on the hub's next turn, as
    ``spawn_n`` schedules a new greenlet, and goes back to ``idle`` when
    ``fn`` returned. Exceptions ``fn`` lets out end the greenlet, and
    reach the hub (which reports them), as a spawned greenlet's would.
    """
    hub = _get_hub()
    child = idle.take()
    if child is None:
        child = WorkerGreenlet(_serve, hub.greenlet)
        child.idle = ref(idle)
    elif child.parent is not hub.greenlet:  # (an @http worker's caller's, until it ended)
        child.parent = hub.greenlet
    child.caller = hub.greenlet
    child.finished = False
    child.job = (fn, args)
    hub.schedule_call_global(0, child.switch)
    return child


_GREENLET_EXIT = _greenlet.GreenletExit
_get_hub = eventlet.hubs.get_hub
_getcurrent = _greenlet.getcurrent


def _references(child: WorkerGreenlet) -> int:
    """``sys.getrefcount(child)``, called from ``take`` and from the probe alike."""
    return sys.getrefcount(child)


def _references_of_an_unremembered_greenlet() -> int:
    """What :func:`_references` says in ``take`` of a greenlet nothing remembers.

    Measured once (on the first ``take`` with a greenlet to check), through
    the same calls, rather than assumed: the count depends on the
    interpreter and greenlet versions. Not at import: that would need
    eventlet's hub before the program chose one.
    """
    counts = []
    for _ in range(2):
        probe = IdleWorkerGreenlets(1)
        registry: dict[None, WorkerGreenlet] = {}
        # as a worker ends: its slot (and registry entry) given back
        run_in_child_greenlet(registry, None, registry.clear, idle=probe)
        child = probe._idle.pop()
        counts.append(_references(child))
        del child
    if counts[0] != counts[1]:
        # Something held a probe greenlet for a moment (a tracer keeping a
        # frame, say): no count can be trusted, so nothing is reused.
        _log.warning("worker greenlets will not be reused: probing their reference "
                     "count gave %s", counts)
        return -1
    return counts[0]


#: set by the first IdleWorkerGreenlets.take with a greenlet to check (-1:
#: no greenlet is ever reused)
_UNREMEMBERED = 0
