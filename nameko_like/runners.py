"""ServiceRunner: run several service containers together."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from collections.abc import Iterator
from typing import Any

from nameko_like._eventlet import eventlet
from nameko_like.amqp.publish_pool import PublishPool
from nameko_like.container_lifecycle import run_on_all
from nameko_like.containers import (
    ServiceContainer,
    get_container_cls,
    get_service_name,
)
from nameko_like.exceptions import DeclarationError

_log = logging.getLogger(__name__)


class ServiceRunner:
    """Hosts one container per service class and drives them as one.

    The runner owns the publish connections its containers share (a
    :class:`~nameko_like.amqp.publish_pool.PublishPool`) and closes them once
    every container has stopped or been killed.

    Example::

        runner = ServiceRunner(config)
        runner.add_service(Greeter)
        runner.start()
        runner.wait()   # until stopped, or one container dies
    """

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.service_map: dict[str, ServiceContainer] = {}
        self.container_cls = get_container_cls(config)
        self.publish_pool = PublishPool()

    @property
    def service_names(self) -> list[str]:
        """Names of the services added so far."""
        return list(self.service_map)

    @property
    def containers(self) -> list[ServiceContainer]:
        """The containers, in the order the services were added."""
        return list(self.service_map.values())

    def add_service(self, cls: type[Any]) -> None:
        """Add a service class; adding the same class again does nothing.

        Raises ``DeclarationError`` (a ``ValueError``) if a *different* class with the same service
        name was added (Nameko would silently replace the first one).
        """
        if not isinstance(cls, type):
            raise DeclarationError(
                f"add_service takes a service class, got {cls!r}; pass the class itself")
        name = get_service_name(cls)
        existing = self.service_map.get(name)
        if existing is not None:
            if existing.service_cls is cls:
                # as in Nameko, a second add of the same class is harmless;
                # keeping the first container also keeps it running if started
                return
            raise DeclarationError(
                f"a different service class named {name!r} ({existing.service_cls.__qualname__}) "
                f"was already added to this runner; give {cls.__qualname__} another `name`")
        container = self.container_cls(cls, self.config)
        container.use_publish_pool(self.publish_pool)
        self.service_map[name] = container

    def start(self) -> None:
        """Start every container (concurrently)."""
        _log.info("starting services: %s", ", ".join(self.service_names))
        run_on_all(self.containers, lambda container: container.start())

    def stop(self) -> None:
        """Stop every container gracefully (concurrently)."""
        _log.info("stopping services: %s", ", ".join(self.service_names))
        try:
            run_on_all(self.containers, lambda container: container.stop())
        finally:
            self.publish_pool.close()

    def kill(self) -> None:
        """Kill every container at once."""
        _log.info("killing services: %s", ", ".join(self.service_names))
        try:
            run_on_all(self.containers, lambda container: container.kill())
        finally:
            self.publish_pool.close()

    def wait(self) -> None:
        """Wait until every container has stopped.

        If one dies with an error, that error is raised at once; the caller
        decides what to do with the others (``nameko_like run`` kills them).
        """
        queue: Any = eventlet.queue.LightQueue()  # eventlet ships no types

        def wait_for(container: ServiceContainer) -> None:
            # the outcome travels through the queue, so a container's error
            # is raised here once rather than printed again by eventlet's hub
            try:
                container.wait()
            except Exception as exc:  # noqa: BLE001 - handed to the caller as is
                queue.put(exc)
            else:
                queue.put(None)

        waiters = [eventlet.spawn(wait_for, container) for container in self.containers]
        try:
            for _ in waiters:
                error = queue.get()
                if error is not None:
                    raise error
        finally:
            for waiter in waiters:
                waiter.kill()


@contextmanager
def run_services(
    config: dict[str, Any], *services: type[Any], kill_on_exit: bool = False
) -> Iterator[ServiceRunner]:
    """Run ``services`` for the duration of a ``with`` block.

    They are stopped gracefully on exit, or killed if ``kill_on_exit``.
    """
    runner = ServiceRunner(config)
    for service in services:
        runner.add_service(service)
    runner.start()
    try:
        yield runner
    finally:
        if kill_on_exit:
            runner.kill()
        else:
            runner.stop()
