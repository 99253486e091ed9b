"""``async def`` service methods, run on eventlet's asyncio hub.

eventlet's asyncio hub (chosen with ``EVENTLET_HUB=asyncio`` in the
environment, before eventlet makes its hub) drives an asyncio event loop:
greenthreads and coroutines then share one thread and can wait for each
other. That is the path off eventlet its maintainers recommend, and this
module is what nameko_like adds on top of it:

- a worker whose service method is ``async def`` stays a greenthread (so
  ``max_workers``, the worker life cycle, kills and graceful stops are the
  same as for sync methods) and waits for the method's coroutine, which runs
  as an asyncio task on the hub's loop (:func:`run_coroutine`);
- dependencies that block offer an awaitable variant to such workers
  (``DependencyProvider.get_async_dependency``); :class:`AwaitingProxy` and
  :func:`in_greenthread` make one out of any blocking object or call;
- a container with ``async def`` entrypoints refuses to start on any other
  hub, naming the switch (:func:`check_hub`).

Code in a coroutine runs in the hub's own greenlet, where nothing may block
the eventlet way (``eventlet.sleep``, a sync RPC call): it must ``await``
instead. ``docs/migrating_off_eventlet.rst`` lists the steps and limits.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, cast

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import ConfigurationError, NamekoLikeException

if TYPE_CHECKING:
    from nameko_like.protocols import ContainerInterface

_log = logging.getLogger(__name__)

__all__ = [
    "HUB_ENVIRONMENT_VARIABLE",
    "AsyncGeneratorMethod",
    "AsyncioHubRequired",
    "AwaitingProxy",
    "WorkerCancelled",
    "async_method_names",
    "check_hub",
    "in_greenthread",
    "is_asyncio_hub",
    "run_coroutine",
]

#: The environment variable eventlet reads to choose its hub.
HUB_ENVIRONMENT_VARIABLE = "EVENTLET_HUB"


class AsyncioHubRequired(ConfigurationError):
    """``async def`` service methods were found, but eventlet runs another hub."""


def is_asyncio_hub() -> bool:
    """Whether eventlet's hub (made now if it was not yet) is the asyncio one."""
    from eventlet.hubs.asyncio import Hub as AsyncioHub

    return isinstance(eventlet.hubs.get_hub(), AsyncioHub)


def _hub_loop() -> asyncio.AbstractEventLoop:
    if not is_asyncio_hub():
        raise AsyncioHubRequired(
            "awaiting needs eventlet's asyncio hub: set "
            f"{HUB_ENVIRONMENT_VARIABLE}=asyncio in the environment before starting"
        )
    loop: asyncio.AbstractEventLoop = eventlet.hubs.get_hub().loop
    return loop


def async_method_names(service_cls: type[Any], method_names: Iterable[str]) -> frozenset[str]:
    """The names among ``method_names`` that are ``async def`` methods of ``service_cls``."""
    return frozenset(
        name for name in method_names
        if inspect.iscoroutinefunction(getattr(service_cls, name, None))
    )


class WorkerCancelled(NamekoLikeException):
    """The task of an ``async def`` method was cancelled from inside the
    method (it let an ``asyncio.CancelledError`` out) rather than by a kill.

    ``CancelledError`` is a ``BaseException``: raised as it is, it would
    pass every ``except Exception`` of the worker life cycle, so the
    message would never be settled nor the caller answered. It is raised as
    this error instead, which the worker handles as any other failure.
    """


class AsyncGeneratorMethod(ConfigurationError):
    """An entrypoint decorates an ``async def`` generator, which no entrypoint runs."""


def check_hub(container: ContainerInterface, async_methods: Iterable[str]) -> None:
    """Refuse to run ``async def`` entrypoint methods anywhere but on the asyncio hub.

    Also refuses ``async def`` generators, on any hub: they would be taken
    for sync methods returning an object no entrypoint can send.
    """
    service_cls = container.service_cls
    generators = sorted(
        name for name in {entrypoint.method_name
                          for entrypoint in getattr(container, "entrypoints", ())}
        if inspect.isasyncgenfunction(getattr(service_cls, name, None))
    )
    if generators:
        raise AsyncGeneratorMethod(
            f"service {container.service_name!r}: entrypoint method(s) {', '.join(generators)} "
            "are async generators (async def with yield), which no entrypoint runs: "
            "return a value, or make a streaming @rpc method a sync generator"
        )
    names = sorted(async_methods)
    if names and not is_asyncio_hub():
        hub = type(eventlet.hubs.get_hub()).__module__
        raise AsyncioHubRequired(
            f"service {container.service_name!r} has async def entrypoint method(s) "
            f"{', '.join(names)}, which run only on eventlet's asyncio hub, but the hub is "
            f"{hub}: set {HUB_ENVIRONMENT_VARIABLE}=asyncio in the environment of the "
            "process (before eventlet makes its hub), or `nameko_like run --eventlet-hub "
            "asyncio`; or make the methods sync"
        )


def run_coroutine(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` as a task on the hub's loop; block this greenthread for its result.

    Called from a worker greenthread. Its exception is raised here, as a sync
    method's would be; killing the greenthread (``container.kill()``, the end
    of a grace period) cancels the task.
    """
    try:
        loop = _hub_loop()
    except AsyncioHubRequired:
        coroutine.close()  # never awaited: no "never awaited" warning on top
        raise
    # The task copies this greenthread's contextvars (tracing, JSON logs).
    task = loop.create_task(coroutine)
    done = eventlet.event.Event()
    task.add_done_callback(lambda _task: done.send(None))
    try:
        done.wait()
    except BaseException:  # GreenletExit: the worker is being killed
        task.cancel()
        raise
    try:
        return task.result()
    except asyncio.CancelledError as exc:
        raise WorkerCancelled(
            f"the coroutine {getattr(coroutine, '__qualname__', coroutine)!s} "
            "was cancelled from inside (an asyncio.CancelledError escaped it)") from exc


def in_greenthread(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Awaitable[Any]:
    """Call ``fn(*args, **kwargs)`` in a new greenthread; await its result.

    The way to call something that blocks the eventlet way from a coroutine.
    The call sees the coroutine's contextvars; cancelling the await kills the
    greenthread.
    """
    _hub_loop()  # fail here, clearly, rather than at the await
    context = contextvars.copy_context()
    # eventlet's GreenThread is awaitable on the asyncio hub (it has no types)
    return cast("Awaitable[Any]", eventlet.spawn(context.run, fn, *args, **kwargs))


class AwaitingProxy:
    """Wraps an object so that its calls, and its attributes' calls, are awaitable.

    ``AwaitingProxy(service_proxy).method(1)`` returns an awaitable of
    ``service_proxy.method(1)``, run in a greenthread (:func:`in_greenthread`).
    Attributes are wrapped too, at any depth: a value is reached by calling.
    """

    __slots__ = ("_target",)

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> AwaitingProxy:
        return AwaitingProxy(getattr(self._target, name))

    def __call__(self, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        return in_greenthread(self._target, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<AwaitingProxy of {self._target!r}>"
