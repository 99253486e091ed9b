"""The pytest plugin's fixtures for configs, containers and runners.

``empty_config``, ``mock_container``, ``container_factory``,
``runner_factory`` and ``predictable_call_ids``, as Nameko's plugin has
them. They are registered by :mod:`nameko_like.testing.pytest`, which
imports them into its namespace (so ``nameko_like.testing.pytest.
container_factory`` still names them).

Loaded with the plugin in every pytest run: nothing here imports eventlet
or nameko_like's core at load time (see :mod:`nameko_like.testing.patching`);
the fixtures import what they need when a test asks for them.
"""

from __future__ import annotations

import importlib
import itertools
import logging
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from nameko_like.constants import DEFAULT_MAX_WORKERS, DEFAULT_SERIALIZER, SERIALIZER_CONFIG_KEY

if TYPE_CHECKING:
    from nameko_like.containers import ServiceContainer
    from nameko_like.runners import ServiceRunner

_log = logging.getLogger(__name__)

__all__ = [
    "ContainerFactory",
    "RunnerFactory",
    "container_factory",
    "empty_config",
    "mock_container",
    "predictable_call_ids",
    "runner_factory",
]


class ContainerFactory(Protocol):
    """The ``container_factory`` fixture's value."""

    def __call__(
        self, service_cls: type, config: dict[str, Any] | None = None
    ) -> ServiceContainer:
        """Make a container of ``service_cls`` (killed at teardown)."""


class RunnerFactory(Protocol):
    """The ``runner_factory`` fixture's value."""

    def __call__(self, config: dict[str, Any], *service_classes: type) -> ServiceRunner:
        """Make a ServiceRunner hosting ``service_classes`` (killed at teardown)."""


def leaks_module() -> ModuleType:
    """:mod:`nameko_like.testing.leaks`, imported now (it imports eventlet)."""
    # By full name, not `from nameko_like.testing import leaks`: that form
    # takes the package attribute even after pytester dropped the module
    # from sys.modules, and a stale copy knows a stale ServiceContainer.
    return importlib.import_module("nameko_like.testing.leaks")


@pytest.fixture
def empty_config() -> dict[str, Any]:
    """An empty config, as in Nameko: ``{}``."""
    return {}


# A mock (of whichever mock library is installed) standing in for a
# ServiceContainer: tests both use it as one and assert on its mocked methods.
@pytest.fixture
def mock_container(empty_config: dict[str, Any]) -> Any:
    """A mock ServiceContainer, for testing extensions on their own.

    As Nameko's: an autospec of ServiceContainer (``mock`` package's when
    installed) whose ``config`` is ``empty_config`` plus the default
    serializer, with ``serializer`` and ``accept``. Also has
    ``service_name`` ``"service"``, an empty ``shared_extensions`` (so
    extensions can bind to it), ``max_workers`` and ``started`` False.
    """
    from nameko_like.containers import ServiceContainer
    from nameko_like.testing._mock import mock_lib

    # A class spec, as Nameko's: its mock is callable, so a mock.Mock.
    container = mock_lib.create_autospec(ServiceContainer)
    container.config = empty_config
    container.config[SERIALIZER_CONFIG_KEY] = DEFAULT_SERIALIZER
    container.serializer = DEFAULT_SERIALIZER
    container.accept = [DEFAULT_SERIALIZER]
    container.service_name = "service"
    container.shared_extensions = {}
    container.max_workers = DEFAULT_MAX_WORKERS
    container.started = False
    return container


def _set_up_broker_first(request: pytest.FixtureRequest) -> None:
    # Fixtures are torn down in reverse order of set-up: a test's vhost must
    # be set up before, so deleted after, the containers that use it.
    if "rabbit_config" in request.fixturenames:
        request.getfixturevalue("rabbit_config")


@pytest.fixture
def container_factory(
    request: pytest.FixtureRequest, empty_config: dict[str, Any]
) -> Iterator[ContainerFactory]:
    """``factory(service_cls, config=None)`` making service containers.

    Honours ``SERVICE_CONTAINER_CLS``; without a config the container gets a
    copy of ``empty_config``. Every container made is killed at teardown.
    """
    from nameko_like.containers import get_container_cls

    kill_all = leaks_module().kill_all

    _set_up_broker_first(request)
    made: list[ServiceContainer] = []

    def factory(service_cls: type, config: dict[str, Any] | None = None) -> ServiceContainer:
        config = dict(empty_config) if config is None else config
        container: ServiceContainer = get_container_cls(config)(service_cls, config)
        made.append(container)
        return container

    yield factory
    kill_all(made)


@pytest.fixture
def runner_factory(request: pytest.FixtureRequest) -> Iterator[RunnerFactory]:
    """``factory(config, *service_classes)`` making ServiceRunners.

    Every runner made is killed at teardown.
    """
    from nameko_like.runners import ServiceRunner

    kill_all = leaks_module().kill_all

    _set_up_broker_first(request)
    made: list[ServiceRunner] = []

    def factory(config: dict[str, Any], *service_classes: type) -> ServiceRunner:
        runner = ServiceRunner(config)
        for service_cls in service_classes:
            runner.add_service(service_cls)
        made.append(runner)
        return runner

    yield factory
    kill_all(made)


# Yields the mock (of whichever mock library is installed) patched over the
# call id generator: tests assert on it as on any mock.
@pytest.fixture
def predictable_call_ids() -> Iterator[Any]:
    """Make call ids ``service.method.0``, ``.1``, ... in creation order, one
    counter for all services, as Nameko's fixture does.

    Yields the (autospec'd) mock standing in for the id generator.
    """
    from nameko_like.testing._mock import mock_lib

    counter = itertools.count()
    with mock_lib.patch("nameko_like.worker_context.new_call_id", autospec=True) as new_id:
        new_id.side_effect = lambda: str(next(counter))
        yield new_id
