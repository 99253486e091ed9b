"""Binding a service class's extensions to a container.

The declarations on a service class (dependency providers as attributes,
entrypoints on its methods) are templates: each container binds copies of
them, and of the sub-extensions (a shared queue consumer, say) they use.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from nameko_like.extensions import (
    ENTRYPOINT_EXTENSIONS_ATTR,
    DependencyProvider,
    Entrypoint,
    Extension,
    is_dependency,
    iter_extensions,
)

if TYPE_CHECKING:
    from nameko_like.protocols import ContainerInterface


def subextensions_of(extensions: Iterable[Extension]) -> set[Extension]:
    """Every sub-extension the given extensions use, at any depth."""
    used: set[Extension] = set()
    for extension in extensions:
        used.update(iter_extensions(extension))
    return used


def bind_dependencies(container: ContainerInterface,
                      service_cls: type[Any]) -> set[DependencyProvider]:
    """Bound copies of the dependency providers ``service_cls`` declares."""
    return {
        declaration.bind(container, attr_name)
        for attr_name, declaration in inspect.getmembers(service_cls, is_dependency)
    }


def bind_entrypoints(container: ContainerInterface, service_cls: type[Any]) -> set[Entrypoint]:
    """Bound copies of the entrypoints declared on ``service_cls``'s methods."""
    return {
        declaration.bind(container, method_name)
        for method_name, method in inspect.getmembers(service_cls, inspect.isfunction)
        for declaration in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ())
    }
