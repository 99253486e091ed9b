"""One worker's life cycle, from dependency injection to teardown.

:meth:`ServiceContainer.spawn_worker <nameko_like.containers.ServiceContainer.spawn_worker>`
checks the call, takes a worker slot and starts a greenthread running
:func:`run_worker`: inject each provider's dependency, ``worker_setup``,
the service method, the entrypoint's result handler, ``worker_result`` and
``worker_teardown``, then give the slot back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from nameko_like import asyncio_support, instrumentation
from nameko_like._eventlet import eventlet
from nameko_like.container_lifecycle import exc_info_of
from nameko_like.protocols import ExcInfo, ResultHandler

if TYPE_CHECKING:
    from nameko_like.containers import ServiceContainer
    from nameko_like.extensions import DependencyProvider
    from nameko_like.worker_context import WorkerContext

_log = logging.getLogger(__name__)


def run_worker(container: ServiceContainer, worker_ctx: WorkerContext,
               handle_result: ResultHandler | None, is_async: bool,
               worker_done: Callable[[WorkerContext], None]) -> None:
    """Run one worker to its end; ``worker_done(worker_ctx)`` frees its slot.

    ``is_async``: the service method is an ``async def``, awaited on the
    hub's loop, and gets the awaitable variants of its dependencies.
    """
    # One function (not a wrapper around the life cycle): it runs per call.
    try:
        entrypoint = worker_ctx.entrypoint
        dependencies = container.dependencies
        # read once: a worker's started and finished hooks always pair up
        observing = instrumentation.observers
        started_at = 0.0
        if observing:
            started_at = time.perf_counter()
            instrumentation.emit("worker_started", worker_ctx)
        outcome = instrumentation.ERROR
        try:
            method = getattr(worker_ctx.service, entrypoint.method_name)
            if dependencies:
                _inject_dependencies(dependencies, worker_ctx, is_async)
                for provider in dependencies:
                    provider.worker_setup(worker_ctx)

            result: Any = None  # whatever the service method returns
            exc_info: ExcInfo | None = None
            try:
                if is_async:
                    result = asyncio_support.run_coroutine(
                        method(*worker_ctx.args, **worker_ctx.kwargs))
                else:
                    result = method(*worker_ctx.args, **worker_ctx.kwargs)
                outcome = instrumentation.OK
            except Exception as exc:  # noqa: BLE001 - the worker's outcome, passed on
                exc_info = exc_info_of(exc)
                if isinstance(exc, entrypoint.expected_exceptions or ()):
                    outcome = instrumentation.EXPECTED_ERROR
                    _log.warning("(expected) %s raised %r", worker_ctx.call_id, exc)
                else:
                    _log.exception("error handling worker %s", worker_ctx.call_id)

            if handle_result is not None:
                result, exc_info = handle_result(worker_ctx, result, exc_info)

            for provider in dependencies:
                _run_after_hook(container, provider, "worker_result", worker_ctx,
                                partial(provider.worker_result, worker_ctx, result, exc_info))
        finally:
            try:
                for provider in dependencies:
                    _run_after_hook(container, provider, "worker_teardown", worker_ctx,
                                    partial(provider.worker_teardown, worker_ctx))
            finally:
                worker_done(worker_ctx)
                if worker_ctx._teardown_callbacks is not None:
                    worker_ctx.run_teardown_callbacks()
                if observing:
                    instrumentation.emit("worker_finished", worker_ctx, outcome,
                                         time.perf_counter() - started_at)
    except Exception as exc:  # noqa: BLE001 - kills the container, logged
        # An error outside the service method before its outcome is
        # settled (worker_setup, a result handler) leaves the service in
        # an unknown state: as in Nameko the container dies loudly rather
        # than limp on. (worker_result/worker_teardown errors don't get
        # here: see _run_after_hook.)
        _log.error("worker %s failed outside its method", worker_ctx.call_id)
        # kill() kills every worker thread, this one included: do it
        # from a thread of its own so it runs to the end.
        eventlet.spawn_n(container.kill, exc_info_of(exc))


def _run_after_hook(container: ServiceContainer, provider: DependencyProvider, hook: str,
                    worker_ctx: WorkerContext, call: Callable[[], object]) -> None:
    """Run a provider's ``worker_result``/``worker_teardown``; log what it raises.

    These run once the method's outcome is settled: the entrypoint has
    already sent the reply and its acknowledgement is on its way. Killing
    the container here would race that ack (the request redelivered and
    run again) and stop every other worker for one provider's bug, so
    the error is logged once, the other providers' hooks still run, and
    the container keeps serving.
    """
    try:
        call()
    except Exception:  # noqa: BLE001 - one provider's bug must not stop the service
        _log.exception("%s of %r raised for worker %s of %s; the container keeps serving",
                       hook, provider, worker_ctx.call_id, container.service_name)


def _inject_dependencies(dependencies: set[DependencyProvider], worker_ctx: WorkerContext,
                         is_async: bool) -> None:
    if is_async:  # an async def method gets the awaitable variants
        for provider in dependencies:
            setattr(worker_ctx.service, provider.attr_name,
                    provider.get_async_dependency(worker_ctx))
        return
    for provider in dependencies:
        setattr(worker_ctx.service, provider.attr_name, provider.get_dependency(worker_ctx))
