"""Small helpers for tests: find containers and extensions, poll, wait."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from nameko_like._eventlet import eventlet
from nameko_like.extensions import DependencyProvider, Extension
from nameko_like.testing import waiting
from nameko_like.testing.waiting import WaitTimeout

if TYPE_CHECKING:
    from nameko_like.containers import ServiceContainer
    from nameko_like.runners import ServiceRunner
    from nameko_like.testing.protocols import ContainerUnderTest
    from nameko_like.testing.rabbit import Client
    from nameko_like.worker_context import WorkerContext

_log = logging.getLogger(__name__)

__all__ = [
    "AnyInstanceOf",
    "DummyProvider",
    "assert_stops_raising",
    "find_free_port",
    "get_container",
    "get_extension",
    "get_rabbit_connections",
    "reset_rabbit_connections",
    "wait_for_call",
    "wait_for_worker_idle",
]


_MISSING = object()

_ExtensionT = TypeVar("_ExtensionT", bound=Extension)
_T = TypeVar("_T")


def get_container(runner: ServiceRunner, service_cls: type) -> ServiceContainer | None:
    """Return the container of ``runner`` hosting ``service_cls``, or None."""
    for container in runner.containers:
        if container.service_cls is service_cls:
            found: ServiceContainer = container
            return found
    return None


def get_extension(
    container: ContainerUnderTest, extension_type: type[_ExtensionT], **match_attrs: Any
) -> _ExtensionT | None:
    """Return an extension of ``container`` of ``extension_type``, or None.

    Keyword arguments further require attributes to equal the given values,
    e.g. ``get_extension(container, Rpc, method_name="add")``.
    """
    for extension in container.extensions:
        if isinstance(extension, extension_type) and all(
            getattr(extension, name, _MISSING) == value for name, value in match_attrs.items()
        ):
            return extension
    return None


@contextmanager
def wait_for_call(timeout: float, mock_method: Any) -> Iterator[Any]:
    """Wait, on entering the block, until ``mock_method`` has been called.

    Yields the mock so the block can assert on its calls. A call made
    before entering counts. (To wait on *exit* for a call the block
    triggers, use :func:`nameko_like.testing.waiting.wait_for_call`.)

    Raises:
        WaitTimeout: the mock was not called within ``timeout`` seconds.
    """
    if not mock_method.called:
        with waiting.wait_for_call(mock_method, timeout=timeout):
            pass
    yield mock_method


def wait_for_worker_idle(container: ContainerUnderTest, timeout: float = 10) -> None:
    """Wait until no worker of ``container`` is running.

    Raises:
        WaitTimeout: workers were still running after ``timeout`` seconds.
    """
    assert_stops_raising(
        lambda: _assert_idle(container),
        exception_type=AssertionError, timeout=timeout, interval=0.01,
    )


def _assert_idle(container: ContainerUnderTest) -> None:
    busy = container.max_workers - container.free_worker_slots
    assert not busy, f"{busy} worker(s) of {container.service_name!r} still running"


def assert_stops_raising(
    fn: Callable[[], _T],
    exception_type: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    timeout: float = 10,
    interval: float = 0.1,
) -> _T:
    """Call ``fn`` until it stops raising ``exception_type``; return its result.

    Sleeps ``interval`` seconds (cooperatively) between attempts.

    Raises:
        WaitTimeout: ``fn`` still raised after ``timeout`` seconds; the last
            error is its ``__cause__``.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except exception_type as exc:
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"{fn!r} still raised {exc!r} after {timeout}s") from exc
        eventlet.sleep(interval)


def get_rabbit_connections(vhost: str, rabbit_manager: Client) -> list[dict[str, Any]]:
    """Return the broker's client connections to ``vhost``, as the
    management API (``rabbit_manager``, a :class:`~nameko_like.testing.rabbit.Client`)
    lists them; an empty list if it lists none."""
    connections = rabbit_manager.get_connections()
    if connections is None:
        return []
    return [connection for connection in connections if connection["vhost"] == vhost]


def reset_rabbit_connections(vhost: str, rabbit_manager: Client) -> None:
    """Force-close every client connection to ``vhost``, through the
    management API; one that closes meanwhile is not an error."""
    # Imported here: requests comes with the `testing` extra, and this module
    # must import without it.
    from requests import HTTPError

    for connection in get_rabbit_connections(vhost, rabbit_manager):
        try:
            rabbit_manager.delete_connection(connection["name"])
        except HTTPError as exc:
            if exc.response is None or exc.response.status_code != 404:
                raise
            # 404: it closed between listing and deleting


def find_free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class DummyProvider(DependencyProvider):
    """A dependency provider that injects ``value`` into every worker."""

    def __init__(self, value: Any = None) -> None:
        self.value = value
        super().__init__()

    def get_dependency(self, worker_ctx: WorkerContext) -> Any:
        """Return the fixed value."""
        return self.value


class AnyInstanceOf:
    """Equal to any instance of ``cls``; for asserting on mock calls.

    Example::

        handler.assert_called_once_with(AnyInstanceOf(WorkerContext))
    """

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def __eq__(self, other: object) -> bool:
        return isinstance(other, self.cls)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]  # equality is not identity

    def __repr__(self) -> str:
        return f"<AnyInstanceOf {self.cls.__qualname__}>"
