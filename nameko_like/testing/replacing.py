"""Replacing parts of a service for a test: its dependencies (on an instance,
or on a container) and its entrypoints.

Everything here is importable from :mod:`nameko_like.testing.services`, where
Nameko has it.
"""

from __future__ import annotations

import inspect
import logging
import typing
from typing import TYPE_CHECKING, Any

from nameko_like.exceptions import ExtensionNotFound, NamekoLikeException
from nameko_like.extensions import DependencyProvider, Entrypoint, is_dependency
from nameko_like.service_binding import subextensions_of
from nameko_like.testing._mock import mock_lib

if TYPE_CHECKING:
    from nameko_like.testing.protocols import ContainerUnderTest
    from nameko_like.worker_context import WorkerContext

_log = logging.getLogger(__name__)

__all__ = [
    "DependencyNamedTwice",
    "MockDependencyProvider",
    "replace_dependencies",
    "restrict_entrypoints",
    "worker_factory",
]


class DependencyNamedTwice(NamekoLikeException, ValueError, RuntimeError):
    """``replace_dependencies`` got one name both positionally and by keyword.

    A RuntimeError as in Nameko, and a ValueError, as it was here before.
    """


def _find_entrypoint(
    container: ContainerUnderTest,
    method_name: str,
    error: type[ExtensionNotFound] = ExtensionNotFound,
) -> Entrypoint:
    for entrypoint in container.entrypoints:
        if entrypoint.method_name == method_name:
            return entrypoint
    known = ", ".join(sorted({ep.method_name for ep in container.entrypoints})) or "none"
    raise error(
        f"No entrypoint for {method_name!r} found on {container.service_name!r} "
        f"(its entrypoints: {known})"
    )


# --- replacing dependencies -------------------------------------------------


def _declared_dependency_type(provider: DependencyProvider) -> type[Any] | None:
    """The class ``provider.get_dependency`` declares it returns, if any."""
    try:
        hints = typing.get_type_hints(type(provider).get_dependency)
    except Exception:  # noqa: BLE001 - an unresolvable annotation only costs us the spec
        return None
    # dict[str, Any] -> dict: a parametrised annotation specs as its class
    declared = typing.get_origin(hints.get("return")) or hints.get("return")
    # typing.Any is a class since Python 3.11: it declares nothing
    if not isinstance(declared, type) or declared in (object, type(None), Any):
        return None
    if hasattr(declared, "__getattr__"):
        # Its attributes are made on demand (an RPC ServiceProxy's methods):
        # a spec would refuse every one of them.
        return None
    return declared


# Returns a mock (of whichever mock library is installed): typed Any, as tests
# both use it in the dependency's place and assert on it as a mock.
def _mock_for(name: str, provider: DependencyProvider) -> Any:
    """A MagicMock (of the ``mock`` package when installed, as in Nameko) to
    inject instead of what ``provider`` would.

    When ``get_dependency`` declares its return type, the mock takes it as
    its spec, so a misspelt attribute fails the test instead of passing.
    """
    return mock_lib.MagicMock(spec=_declared_dependency_type(provider), name=name)


class MockDependencyProvider(DependencyProvider):
    """Injects ``dependency`` (a fresh MagicMock when None) as ``attr_name``.

    Binding makes a new instance; with ``dependency=None`` each bound copy
    has its own mock, so read ``.dependency`` from the bound provider.
    """

    def __init__(self, attr_name: str, dependency: Any = None) -> None:
        self.attr_name = attr_name
        self.dependency = (
            mock_lib.MagicMock(name=attr_name) if dependency is None else dependency
        )
        super().__init__()

    def get_dependency(self, worker_ctx: WorkerContext) -> Any:
        """Return the replacement object."""
        return self.dependency


# Returns the user's service instance with mocks in its providers' places:
# Any, for tests to reach into the mocks (``service.rates.get_rate.return_value``).
def worker_factory(service_cls: type, **dependencies: Any) -> Any:
    """Return an instance of ``service_cls`` ready for a unit test.

    Every dependency provider attribute is replaced by the object given for
    it in ``dependencies`` or else by a MagicMock of the ``mock`` package
    when installed, as in Nameko, else of ``unittest.mock`` (spec'd when the provider
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


def _refuse_if_started(container: ContainerUnderTest, action: str) -> None:
    if container.started:
        raise RuntimeError(f"{action} must be called before the container is started")


def _drop_unused_subextensions(container: ContainerUnderTest) -> None:
    """Forget sub-extensions no remaining entrypoint or provider uses.

    Otherwise a removed RPC entrypoint's consumer, say, would still start
    and connect to a broker the test does not need.
    """
    used = subextensions_of(container.dependencies | container.entrypoints)
    container.subextensions.intersection_update(used)
    for key, shared in list(container.shared_extensions.items()):
        if shared not in used:
            del container.shared_extensions[key]


# Returns a mock or an iterator of mocks (see the docstring): Any, as tests
# assert on them as mocks.
def replace_dependencies(
    container: ContainerUnderTest, *dependencies: str, **replacements: Any
) -> Any:
    """Replace dependency providers of an unstarted container.

    Each name in ``dependencies`` gets a MagicMock; each keyword names a
    provider and the object to inject instead. Only this container changes,
    not the service class. Returns the mock for a single positional name,
    else (as Nameko) an iterator over the mocks in the order named, to
    unpack: ``a, b = replace_dependencies(container, "a", "b")``. Keyword
    replacements are not returned.

    Example::

        container = container_factory(ConversionService, config)
        math = replace_dependencies(container, "math")
        container.start()

    Raises:
        RuntimeError: the container has already started.
        ExtensionNotFound: a name is not a dependency of the container.
        DependencyNamedTwice: a name is given both positionally and as a
            keyword (a RuntimeError, as in Nameko, and a ValueError).
    """
    _refuse_if_started(container, "replace_dependencies()")
    both = sorted(set(dependencies) & set(replacements))
    if both:
        raise DependencyNamedTwice(
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
    mocks = [chosen[name] for name in dependencies]
    return mocks[0] if len(mocks) == 1 else iter(mocks)


def restrict_entrypoints(container: ContainerUnderTest, *method_names: str) -> None:
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
