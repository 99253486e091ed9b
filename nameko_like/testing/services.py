"""Helpers for testing services: run entrypoints by hand, wait for workers,
swap dependencies for mocks and trim containers down to what a test needs.

Example::

    container = container_factory(Greeter, config)
    store = replace_dependencies(container, "store")
    store.greeting_for.return_value = "Hi"
    container.start()

    with entrypoint_hook(container, "greet") as greet:
        assert greet("Ann") == "Hi, Ann"
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import ContainerError, ExtensionNotFound
from nameko_like.extensions import Entrypoint
from nameko_like.protocols import ExcInfo, ResultHandler
from nameko_like.testing.replacing import (
    DependencyNamedTwice,
    MockDependencyProvider,
    _find_entrypoint,
    replace_dependencies,
    restrict_entrypoints,
    worker_factory,
)
from nameko_like.testing.utils import get_extension
from nameko_like.testing.waiting import WaitResult, WaitTimeout

if TYPE_CHECKING:
    from nameko_like.testing.protocols import ContainerUnderTest
    from nameko_like.worker_context import WorkerContext

_log = logging.getLogger(__name__)

__all__ = [
    "DependencyNamedTwice",
    "Dummy",
    "EntrypointNotFound",
    "EntrypointWaiterTimeout",
    "MockDependencyProvider",
    "Once",
    "dummy",
    "entrypoint_hook",
    "entrypoint_waiter",
    "get_extension",
    "once",
    "replace_dependencies",
    "restrict_entrypoints",
    "worker_factory",
]


class EntrypointWaiterTimeout(WaitTimeout):
    """No awaited worker completed within ``entrypoint_waiter``'s timeout."""


class EntrypointNotFound(ExtensionNotFound, RuntimeError):
    """``entrypoint_waiter`` was asked for a method with no entrypoint.

    Also a RuntimeError, which is what Nameko raises there.
    """


# --- running and awaiting workers -------------------------------------------


#: ``callback(worker_ctx, result, exc_info)`` of ``entrypoint_waiter``.
WaiterCallback = Callable[["WorkerContext", Any, "ExcInfo | None"], Any]


def _after_worker(worker_ctx: WorkerContext, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the worker of ``worker_ctx`` has been torn down."""
    worker_ctx.after_teardown(callback)


def _observing(
    handle_result: ResultHandler | None,
    observe: Callable[[WorkerContext, Any, ExcInfo | None], None],
) -> ResultHandler:
    """Wrap an entrypoint's result handler (or none) for a test to observe.

    ``observe(worker_ctx, result, exc_info)`` gets the outcome the handler
    passed on to the providers, once the worker has been torn down.
    """

    def observed(
        worker_ctx: WorkerContext, result: Any, exc_info: ExcInfo | None
    ) -> tuple[Any, ExcInfo | None]:
        if handle_result is not None:
            result, exc_info = handle_result(worker_ctx, result, exc_info)
        _after_worker(worker_ctx, lambda: observe(worker_ctx, result, exc_info))
        return result, exc_info

    return observed


def _settle_when_dead(container: ContainerUnderTest, outcome: WaitResult) -> None:
    """Settle ``outcome`` with the container's death, should it die first.

    A worker whose provider fails before the method returns never reports a
    result; without this a test would wait for it until it timed out.
    """
    try:
        container.wait()
    except Exception as exc:  # noqa: BLE001 - whatever it died of is the worker's outcome
        outcome.send(None, (type(exc), exc, exc.__traceback__))
        return
    error = ContainerError(
        f"{container.service_name!r} stopped before the awaited worker completed"
    )
    outcome.send(None, (type(error), error, None))


def _await(outcome: WaitResult, container: ContainerUnderTest) -> None:
    """Block until ``outcome`` is settled, by its worker or the container's death."""
    watcher = eventlet.spawn(_settle_when_dead, container, outcome)
    try:
        outcome.wait()
    finally:
        watcher.kill()


@contextmanager
def entrypoint_hook(
    container: ContainerUnderTest,
    method_name: str,
    context_data: dict[str, Any] | None = None,
    timeout: float | None = 30,
) -> Iterator[Callable[..., Any]]:
    """Yield a function that runs the entrypoint of ``method_name`` as a worker.

    Calling it spawns a worker through the container, with ``context_data``,
    and waits until the worker has finished (its providers torn down); it
    returns the method's result or raises what the method raised. If the
    container dies instead, it raises the error the container died of.

    Raises:
        ExtensionNotFound: the container has no entrypoint for ``method_name``.
        WaitTimeout: the worker took longer than ``timeout`` seconds.
    """
    entrypoint = _find_entrypoint(container, method_name)
    name = f"{container.service_name}.{method_name}"

    def hook(*args: Any, **kwargs: Any) -> Any:
        outcome = WaitResult()
        handle_result = _observing(None, lambda _ctx, res, exc_info: outcome.send(res, exc_info))
        error = WaitTimeout(f"entrypoint_hook: {name} did not complete within {timeout}s")
        # The timeout covers waiting for a free worker slot too.
        with eventlet.Timeout(timeout, error):
            container.spawn_worker(
                entrypoint, args, kwargs, context_data=context_data, handle_result=handle_result
            )
            _await(outcome, container)
        return outcome.get()

    yield hook


@contextmanager
def entrypoint_waiter(
    container: ContainerUnderTest,
    method_name: str,
    timeout: float | None = 30,
    callback: WaiterCallback | None = None,
) -> Iterator[WaitResult]:
    """Wait, when the ``with`` block exits, for a worker of ``method_name``.

    The wait ends once a worker started inside the block (or while waiting)
    has completed and been torn down, and ``callback(worker_ctx, result,
    exc_info)``, if given, returned true for it. The yielded
    :class:`WaitResult`'s ``get()`` then returns that worker's result or
    raises its error.

    Example::

        with entrypoint_waiter(container, "handle_event") as result:
            dispatch("src", "event_type", payload)
        assert result.get() == "handled"

    Raises:
        EntrypointNotFound: the container has no entrypoint for ``method_name``
            (an ExtensionNotFound and, as in Nameko, a RuntimeError).
        entrypoint_waiter.Timeout: no such worker within ``timeout`` seconds.
        Exception: whatever ``callback`` raised, or the error the container
            died of while waiting.
    """
    _find_entrypoint(container, method_name, EntrypointNotFound)
    outcome = WaitResult()
    reported_by_worker = False

    def consider(worker_ctx: WorkerContext, result: Any, exc_info: ExcInfo | None) -> None:
        nonlocal reported_by_worker
        if outcome.has_result:
            return
        try:
            accepted = callback is None or callback(worker_ctx, result, exc_info)
        except Exception as exc:  # noqa: BLE001 - the test's callback failed: the waiter raises it
            outcome.send(None, (type(exc), exc, exc.__traceback__))
            return
        if accepted:
            reported_by_worker = True
            outcome.worker_ctx = worker_ctx  # as Nameko's waiter result has
            outcome.send(result, exc_info)

    original = container.spawn_worker
    replaced_instance_attr = "spawn_worker" in vars(container)

    def spawn_worker(
        entrypoint: Entrypoint, args: Iterable[Any], kwargs: dict[str, Any],
        context_data: dict[str, Any] | None = None,
        handle_result: ResultHandler | None = None,
    ) -> WorkerContext:
        if entrypoint.method_name == method_name and not outcome.has_result:
            handle_result = _observing(handle_result, consider)
        return original(
            entrypoint, args, kwargs, context_data=context_data, handle_result=handle_result
        )

    # Entrypoints reach the container through its attribute, so wrapping it
    # on this one instance sees every worker without touching the class.
    # (setattr/delattr: the protocol declares a method, which mypy will not
    # let us assign to.)
    setattr(container, "spawn_worker", spawn_worker)  # noqa: B010
    try:
        yield outcome
        extra = " and satisfied the callback" if callback is not None else ""
        error = EntrypointWaiterTimeout(
            f"entrypoint_waiter: no worker of {container.service_name}.{method_name} "
            f"completed{extra} within {timeout}s"
        )
        with eventlet.Timeout(timeout, error):
            _await(outcome, container)
        if not reported_by_worker:
            outcome.get()  # raises the callback's or the container's error
    finally:
        if replaced_instance_attr:
            setattr(container, "spawn_worker", original)  # noqa: B010
        else:
            delattr(container, "spawn_worker")


#: Nameko's name for the error raised when ``entrypoint_waiter`` times out.
#: (A function attribute, which mypy has no way to declare.)
entrypoint_waiter.Timeout = EntrypointWaiterTimeout  # type: ignore[attr-defined]


# --- entrypoints for tests --------------------------------------------------


class Once(Entrypoint):
    """Runs its method once, with the given arguments, when the container starts.

    Example::

        @once("hello", times=2)
        def shout(self, word, times): ...
    """

    def __init__(
        self,
        *args: Any,
        expected_exceptions: type | tuple[type, ...] = (),
        sensitive_arguments: str | tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        self.args = args
        self.kwargs = kwargs
        super().__init__(
            expected_exceptions=expected_exceptions, sensitive_arguments=sensitive_arguments
        )

    def start(self) -> None:
        """Spawn the one worker."""
        self.container.spawn_worker(self, self.args, self.kwargs)


class Dummy(Entrypoint):
    """Never fires by itself: marks a method that tests run with ``entrypoint_hook``."""


once = Once.decorator
dummy = Dummy.decorator
