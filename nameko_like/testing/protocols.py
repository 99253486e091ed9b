"""What the testing helpers need of a container, as a Protocol.

The helpers (``entrypoint_hook``, ``replace_dependencies``,
``get_extension``, ...) take a container from ``container_factory``, a
``SERVICE_CONTAINER_CLS`` subclass, or a ported suite's own; they need more
of it than an extension does (:class:`nameko_like.protocols.ContainerInterface`):
its bound dependencies and sub-extensions, whether it started, ``wait()``.
:class:`~nameko_like.containers.ServiceContainer` is the implementation.

Only types live here: importing this module imports nothing else of
nameko_like at run time but :mod:`nameko_like.protocols`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from nameko_like.protocols import ContainerInterface

if TYPE_CHECKING:
    from nameko_like.containers import ServiceContainer
    from nameko_like.extensions import DependencyProvider, Extension

__all__ = ["ContainerUnderTest"]


class ContainerUnderTest(ContainerInterface, Protocol):
    """A container as the testing helpers drive and rearrange it."""

    @property
    def dependencies(self) -> set[DependencyProvider]:
        """The bound dependency providers (``replace_dependencies`` swaps them)."""

    @property
    def subextensions(self) -> set[Extension]:
        """The bound sub-extensions of the entrypoints and providers."""

    @property
    def extensions(self) -> set[Extension]:
        """Every bound extension: dependencies, entrypoints, sub-extensions."""

    @property
    def started(self) -> bool:
        """Whether ``start()`` was called (then it can no longer be rearranged)."""

    def wait(self) -> object:
        """Block until the container dies; re-raise the error that killed it.

        Whatever it returns is ignored.
        """


if TYPE_CHECKING:

    def _service_container_fits(container: ServiceContainer) -> ContainerUnderTest:
        # mypy (run on the package) fails here should ServiceContainer drift
        # from what the testing helpers need of it.
        return container
