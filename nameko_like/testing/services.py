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

import inspect
import logging
import sys
import typing
from contextlib import contextmanager
from typing import Any, Callable, Iterator
from unittest.mock import MagicMock

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import ContainerError, ExtensionNotFound
from nameko_like.extensions import (
    DependencyProvider,
    Entrypoint,
    is_dependency,
    iter_extensions,
)
from nameko_like.testing.waiting import WaitResult, WaitTimeout

_log = logging.getLogger(__name__)

__all__ = [
    "entrypoint_hook", "entrypoint_waiter", "worker_factory", "replace_dependencies",
    "restrict_entrypoints", "once", "Once", "dummy", "Dummy", "MockDependencyProvider",
    "EntrypointWaiterTimeout",
]


class EntrypointWaiterTimeout(WaitTimeout):
    """No awaited worker completed within ``entrypoint_waiter``'s timeout."""


# --- running and awaiting workers -------------------------------------------


def _find_entrypoint(container: Any, method_name: str) -> Entrypoint:
    for entrypoint in container.entrypoints:
        if entrypoint.method_name == method_name:
            return entrypoint
    known = ", ".join(sorted({ep.method_name for ep in container.entrypoints})) or "none"
    raise ExtensionNotFound(
        f"No entrypoint for {method_name!r} found on {container.service_name!r} "
        f"(its entrypoints: {known})"
    )


def _after_worker(worker_ctx: Any, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the worker of ``worker_ctx`` has been torn down."""
    worker_ctx.after_teardown(callback)


def _observing(
    handle_result: Callable | None, observe: Callable[[Any, Any, Any], None]
) -> Callable:
    """Wrap an entrypoint's result handler (or none) for a test to observe.

    ``observe(worker_ctx, result, exc_info)`` gets the outcome the handler
    passed on to the providers, once the worker has been torn down.
    """

    def observed(worker_ctx: Any, result: Any, exc_info: Any) -> tuple:
        if handle_result is not None:
            result, exc_info = handle_result(worker_ctx, result, exc_info)
        _after_worker(worker_ctx, lambda: observe(worker_ctx, result, exc_info))
        return result, exc_info

    return observed


def _settle_when_dead(container: Any, outcome: WaitResult) -> None:
    """Settle ``outcome`` with the container's death, should it die first.

    A worker whose provider fails before the method returns never reports a
    result; without this a test would wait for it until it timed out.
    """
    try:
        container.wait()
    except Exception:
        outcome.send(None, sys.exc_info())
        return
    error = ContainerError(
        f"{container.service_name!r} stopped before the awaited worker completed"
    )
    outcome.send(None, (type(error), error, None))


def _await(outcome: WaitResult, container: Any) -> None:
    """Block until ``outcome`` is settled, by its worker or the container's death."""
    watcher = eventlet.spawn(_settle_when_dead, container, outcome)
    try:
        outcome.wait()
    finally:
        watcher.kill()


@contextmanager
def entrypoint_hook(
    container: Any, method_name: str, context_data: dict | None = None, timeout: float | None = 30
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
    container: Any,
    method_name: str,
    timeout: float | None = 30,
    callback: Callable[[Any, Any, Any], Any] | None = None,
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
        ExtensionNotFound: the container has no entrypoint for ``method_name``.
        entrypoint_waiter.Timeout: no such worker within ``timeout`` seconds.
        Exception: whatever ``callback`` raised, or the error the container
            died of while waiting.
    """
    _find_entrypoint(container, method_name)
    outcome = WaitResult()
    reported_by_worker = False

    def consider(worker_ctx: Any, result: Any, exc_info: Any) -> None:
        nonlocal reported_by_worker
        if outcome.has_result:
            return
        try:
            accepted = callback is None or callback(worker_ctx, result, exc_info)
        except Exception:
            outcome.send(None, sys.exc_info())
            return
        if accepted:
            reported_by_worker = True
            outcome.send(result, exc_info)

    original = container.spawn_worker
    replaced_instance_attr = "spawn_worker" in vars(container)

    def spawn_worker(
        entrypoint: Any, args: Any, kwargs: dict, context_data: dict | None = None,
        handle_result: Callable | None = None,
    ) -> Any:
        if entrypoint.method_name == method_name and not outcome.has_result:
            handle_result = _observing(handle_result, consider)
        return original(
            entrypoint, args, kwargs, context_data=context_data, handle_result=handle_result
        )

    # Entrypoints reach the container through its attribute, so wrapping it
    # on this one instance sees every worker without touching the class.
    container.spawn_worker = spawn_worker
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
            container.spawn_worker = original
        else:
            del container.spawn_worker


#: Nameko's name for the error raised when ``entrypoint_waiter`` times out.
entrypoint_waiter.Timeout = EntrypointWaiterTimeout  # type: ignore[attr-defined]


# --- replacing dependencies -------------------------------------------------


def _declared_dependency_type(provider: DependencyProvider) -> type | None:
    """The class ``provider.get_dependency`` declares it returns, if any."""
    try:
        hints = typing.get_type_hints(type(provider).get_dependency)
    except Exception:  # an unresolvable annotation only costs us the spec
        return None
    declared = hints.get("return")
    if not isinstance(declared, type) or declared in (object, type(None)):
        return None
    if hasattr(declared, "__getattr__"):
        # Its attributes are made on demand (an RPC ServiceProxy's methods):
        # a spec would refuse every one of them.
        return None
    return declared


def _mock_for(name: str, provider: DependencyProvider) -> MagicMock:
    """A MagicMock to inject instead of what ``provider`` would.

    When ``get_dependency`` declares its return type, the mock takes it as
    its spec, so a misspelt attribute fails the test instead of passing.
    """
    return MagicMock(spec=_declared_dependency_type(provider), name=name)


class MockDependencyProvider(DependencyProvider):
    """Injects ``dependency`` (a fresh MagicMock when None) as ``attr_name``.

    Binding makes a new instance; with ``dependency=None`` each bound copy
    has its own mock, so read ``.dependency`` from the bound provider.
    """

    def __init__(self, attr_name: str, dependency: Any = None) -> None:
        self.attr_name = attr_name
        self.dependency = MagicMock(name=attr_name) if dependency is None else dependency
        super().__init__()

    def get_dependency(self, worker_ctx: Any) -> Any:
        """Return the replacement object."""
        return self.dependency


def worker_factory(service_cls: type, **dependencies: Any) -> Any:
    """Return an instance of ``service_cls`` ready for a unit test.

    Every dependency provider attribute is replaced by the object given for
    it in ``dependencies`` or else by a MagicMock (spec'd when the provider
    declares its ``get_dependency`` return type). No container is involved.

    Example::

        service = worker_factory(ConversionService)
        service.rates.get_rate.return_value = 2
        assert service.convert(10, "EUR") == 20

    Raises:
        ExtensionNotFound: a name in ``dependencies`` is not a provider.
    """
    providers = dict(inspect.getmembers(service_cls, is_dependency))
    unknown = sorted(set(dependencies) - set(providers))
    if unknown:
        raise ExtensionNotFound(
            f"{service_cls.__name__} has no dependency provider named {', '.join(unknown)} "
            f"(its providers: {', '.join(sorted(providers)) or 'none'})"
        )
    service = service_cls()
    for name, provider in providers.items():
        replacement = dependencies[name] if name in dependencies else _mock_for(name, provider)
        setattr(service, name, replacement)
    return service


def _refuse_if_started(container: Any, action: str) -> None:
    if container.started:
        raise RuntimeError(f"{action} must be called before the container is started")


def _drop_unused_subextensions(container: Any) -> None:
    """Forget sub-extensions no remaining entrypoint or provider uses.

    Otherwise a removed RPC entrypoint's consumer, say, would still start
    and connect to a broker the test does not need.
    """
    used: set[Any] = set()
    for extension in container.dependencies | container.entrypoints:
        used.update(iter_extensions(extension))
    container.subextensions.intersection_update(used)
    for key, shared in list(container.shared_extensions.items()):
        if shared not in used:
            del container.shared_extensions[key]


def replace_dependencies(container: Any, *dependencies: str, **replacements: Any) -> Any:
    """Replace dependency providers of an unstarted container.

    Each name in ``dependencies`` gets a MagicMock; each keyword names a
    provider and the object to inject instead. Only this container changes,
    not the service class. Returns the mock for a single positional name,
    else a tuple of mocks in the order named (keyword replacements are not
    returned).

    Example::

        container = container_factory(ConversionService, config)
        math = replace_dependencies(container, "math")
        container.start()

    Raises:
        RuntimeError: the container has already started.
        ExtensionNotFound: a name is not a dependency of the container.
        ValueError: a name is given both positionally and as a keyword.
    """
    _refuse_if_started(container, "replace_dependencies()")
    both = sorted(set(dependencies) & set(replacements))
    if both:
        raise ValueError(
            f"replace_dependencies(): {', '.join(both)} named both positionally and as keywords"
        )
    providers = {provider.attr_name: provider for provider in container.dependencies}
    missing = [name for name in (*dependencies, *replacements) if name not in providers]
    if missing:
        raise ExtensionNotFound(
            f"{container.service_name!r} has no dependency named {', '.join(missing)} "
            f"(its dependencies: {', '.join(sorted(providers)) or 'none'})"
        )
    chosen = {name: _mock_for(name, providers[name]) for name in dependencies}
    chosen.update(replacements)
    for name, replacement in chosen.items():
        container.dependencies.discard(providers[name])
        container.dependencies.add(MockDependencyProvider(name, replacement).bind(container, name))
    _drop_unused_subextensions(container)
    mocks = tuple(chosen[name] for name in dependencies)
    return mocks[0] if len(mocks) == 1 else mocks


def restrict_entrypoints(container: Any, *method_names: str) -> None:
    """Remove every entrypoint of an unstarted container but those named.

    Example::

        container = container_factory(Service, config)
        restrict_entrypoints(container, "handle_event")  # no RPC, no timers
        container.start()

    Raises:
        RuntimeError: the container has already started.
        ExtensionNotFound: a name has no entrypoint on the container.
    """
    _refuse_if_started(container, "restrict_entrypoints()")
    for name in method_names:
        _find_entrypoint(container, name)
    for entrypoint in list(container.entrypoints):
        if entrypoint.method_name not in method_names:
            container.entrypoints.discard(entrypoint)
    _drop_unused_subextensions(container)


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
