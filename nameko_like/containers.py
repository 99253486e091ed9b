"""ServiceContainer: hosts one service class and runs its workers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from nameko_like import asyncio_support, instrumentation, serialization, tracing
from nameko_like._eventlet import eventlet
from nameko_like.amqp.broker_uri import check_transport
from nameko_like.constants import (
    AMQP_URI_CONFIG_KEY,
    DEFAULT_AMQP_URI,
    DEFAULT_MAX_WORKERS,
    DEFAULT_SHUTDOWN_GRACE_PERIOD,
    MAX_WORKERS_CONFIG_KEY,
    METRICS_ADDRESS_CONFIG_KEY,
    SERVICE_CONTAINER_CLS,
    SHUTDOWN_GRACE_PERIOD_CONFIG_KEY,
)
from nameko_like.container_lifecycle import exc_info_of, run_on_all
from nameko_like.exceptions import ContainerBeingKilled, ServiceNameError
from nameko_like.extensions import DependencyProvider, Entrypoint, Extension
from nameko_like.protocols import ExcInfo, ResultHandler
from nameko_like.service_binding import bind_dependencies, bind_entrypoints, subextensions_of
from nameko_like.utils import import_from_path
from nameko_like.worker_context import WorkerContext
from nameko_like.worker_greenlet import (
    IdleWorkerGreenlets,
    run_in_child_greenlet,
    spawn_in_worker_greenlet,
)
from nameko_like.worker_lifecycle import run_worker

if TYPE_CHECKING:
    from nameko_like.amqp.publish_pool import PublishPool

_log = logging.getLogger(__name__)

__all__ = ["ServiceContainer", "WorkerContext", "get_container_cls", "get_service_name"]

def get_service_name(service_cls: type) -> str:
    """Return the ``name`` a service class declares, or raise a clear error."""
    name = getattr(service_cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ServiceNameError(
            f"Service class {service_cls.__name__} must define a `name` attribute (a non-empty str)"
        )
    return name


def get_container_cls(config: dict[str, Any]) -> type[ServiceContainer]:
    """The container class named by ``SERVICE_CONTAINER_CLS``, or ServiceContainer."""
    path = config.get(SERVICE_CONTAINER_CLS)
    if path:
        container_cls: type[ServiceContainer] = import_from_path(path)
        return container_cls
    return ServiceContainer


class ServiceContainer:
    """Runs one service class: binds its extensions and spawns its workers.

    Args:
        service_cls: the service class (it must have a ``name``).
        config: the configuration dict shared with every extension.
    """

    def __init__(self, service_cls: type[Any], config: dict[str, Any]) -> None:
        self.service_cls = service_cls
        self.config = config
        self.service_name = get_service_name(service_cls)
        self.max_workers: int = config.get(MAX_WORKERS_CONFIG_KEY) or DEFAULT_MAX_WORKERS
        # As in Nameko: extensions may read container.serializer / .accept,
        # and a bad serializer config fails here, before anything starts.
        self.serializer, self.accept = serialization.setup(config)
        self.shared_extensions: dict[object, Extension] = {}
        # Set before binding, which runs user code and may raise: a
        # half-built container must still answer `running` and `wait()`.
        self.started = False
        self._being_killed = False
        self._died = eventlet.event.Event()
        # A transport we cannot use (redis://) would fail in every consumer's
        # reconnect loop, forever: refuse it here instead.
        check_transport(config.get(AMQP_URI_CONFIG_KEY) or DEFAULT_AMQP_URI)

        self.dependencies: set[DependencyProvider] = bind_dependencies(self, service_cls)
        self.entrypoints: set[Entrypoint] = bind_entrypoints(self, service_cls)
        self.subextensions: set[Extension] = subextensions_of(
            [*self.dependencies, *self.entrypoints])

        # Workers of these methods await a coroutine (asyncio_support).
        self._async_methods = asyncio_support.async_method_names(
            service_cls, {entrypoint.method_name for entrypoint in self.entrypoints}
        )

        # A semaphore and bare greenlets rather than a GreenPool: no
        # GreenThread, result event and link per call on the hot path.
        self._worker_slots = eventlet.semaphore.Semaphore(self.max_workers)
        #: made by whoever waits for the workers to finish (nothing per call)
        self._workers_idle: Any = None
        # eventlet's greenlets and greenthreads (eventlet ships no types)
        self._worker_threads: dict[WorkerContext, Any] = {}
        #: worker greenlets that may run the next worker
        self._idle_worker_greenlets = IdleWorkerGreenlets(self.max_workers)
        self._managed_threads: dict[Any, str | None] = {}
        #: the publish pool extensions publish through: the runner's, or
        #: this container's own (made on first use, closed when it stops)
        self._publish_pool: PublishPool | None = None
        self._owns_publish_pool = True

    @property
    def publish_pool(self) -> PublishPool:
        """The publish connections of this container's extensions.

        A runner shares its own with its containers (``use_publish_pool``);
        a container run alone has one of its own, closed when it stops or
        is killed.
        """
        pool = self._publish_pool
        if pool is None:
            # imported here: a container that never publishes needs none of it
            from nameko_like.amqp.publish_pool import PublishPool

            pool = self._publish_pool = PublishPool()
        return pool

    def use_publish_pool(self, pool: PublishPool) -> None:
        """Publish through ``pool``, which its owner (a runner) closes; call before ``start``."""
        self._publish_pool = pool
        self._owns_publish_pool = False

    def _close_publish_pool(self) -> None:
        if self._owns_publish_pool and self._publish_pool is not None:
            self._publish_pool.close()

    @property
    def extensions(self) -> set[Extension]:
        """Every bound extension of this container."""
        return set(self.dependencies) | self.entrypoints | self.subextensions

    @property
    def interface(self) -> ServiceContainer:
        """What extensions see of their container (Nameko compatibility)."""
        return self

    @property
    def running(self) -> bool:
        """Whether the container has started and not yet died."""
        return self.started and not self._died.ready()

    @property
    def free_worker_slots(self) -> int:
        """How many workers can be spawned now without waiting."""
        counter: int = self._worker_slots.counter
        return counter

    def wait_for_worker_slot(self, timeout: float = 0.5) -> bool:
        """Block until a worker could be spawned without waiting, or ``timeout``.

        The slot is not reserved: spawn in the same greenthread, without
        yielding in between, to be sure to get it.
        """
        semaphore = self._worker_slots
        if semaphore.acquire(timeout=timeout):
            semaphore.release()
            return True
        return False

    def start(self) -> None:
        """Set up every extension, then start dependencies before entrypoints."""
        _log.debug("starting %s", self.service_name)
        asyncio_support.check_hub(self, self._async_methods)
        tracing.setup(self.config)  # on if TRACING is set; imports nothing otherwise
        if self.config.get(METRICS_ADDRESS_CONFIG_KEY):
            # imported here: prometheus-client is an optional extra
            from nameko_like import operations

            operations.attach(self)
        self.started = True
        run_on_all(self.extensions, lambda ext: ext.setup())
        run_on_all(self.dependencies, lambda ext: ext.start())
        run_on_all(self.subextensions - self.entrypoints, lambda ext: ext.start())
        run_on_all(self.entrypoints, lambda ext: ext.start())
        _log.debug("started %s", self.service_name)
        if instrumentation.observers:
            instrumentation.emit("container_started", self)

    def stop(self) -> None:
        """Stop gracefully: no new work, let running workers finish, then stop.

        Workers still running after ``SHUTDOWN_GRACE_PERIOD`` seconds are
        killed; the messages that started them are not acknowledged and so go
        back to their queue.
        """
        if self._died.ready():
            return
        if self._being_killed:
            self._wait_for_kill()
            return
        _log.debug("stopping %s", self.service_name)
        run_on_all(self.entrypoints, lambda ext: ext.stop())

        grace = self.config.get(SHUTDOWN_GRACE_PERIOD_CONFIG_KEY, DEFAULT_SHUTDOWN_GRACE_PERIOD)
        if not self._wait_for_workers(grace):
            _log.warning(
                "%s: %d worker(s) still running after the %ss grace period; killing them",
                self.service_name, len(self._worker_threads), grace,
            )
            self._kill_worker_threads()

        run_on_all(self.dependencies, lambda ext: ext.stop())
        run_on_all(self.subextensions - self.entrypoints, lambda ext: ext.stop())
        self._kill_managed_threads()
        # after every extension stopped: replies and events were confirmed
        self._close_publish_pool()
        self._idle_worker_greenlets.clear()
        self.started = False
        if not self._died.ready():
            self._died.send(None)
        _log.debug("stopped %s", self.service_name)
        if instrumentation.observers:
            instrumentation.emit("container_stopped", self)

    def _wait_for_workers(self, timeout: float | None) -> bool:
        """Wait until no worker runs; False if ``timeout`` passed first."""
        if not self._worker_threads:
            return True
        if self._workers_idle is None:
            self._workers_idle = eventlet.event.Event()
        return bool(self._workers_idle.wait(timeout)) or not self._worker_threads

    def kill(self, exc_info: ExcInfo | None = None) -> None:
        """Stop at once; ``wait()`` then raises the error in ``exc_info``, if any."""
        if self._being_killed:
            _log.debug("already killing %s; waiting for it", self.service_name)
            self._wait_for_kill()
            return
        if self._died.ready():
            return
        self._being_killed = True
        if exc_info is not None:
            _log.error("killing %s because of an error", self.service_name, exc_info=exc_info)
        else:
            _log.info("killing %s", self.service_name)

        def safely_kill(ext: Extension) -> None:
            try:
                ext.kill()
            except Exception:  # noqa: BLE001 - killing must reach every extension
                _log.warning("extension %r raised while being killed", ext, exc_info=True)

        for group in (self.entrypoints, self.dependencies, self.subextensions - self.entrypoints):
            run_on_all(group, safely_kill)
        self._kill_worker_threads()
        self._kill_managed_threads()
        self._close_publish_pool()
        self._idle_worker_greenlets.clear()
        self.started = False
        if instrumentation.observers:
            instrumentation.emit("container_stopped", self)
        if not self._died.ready():
            if exc_info is not None:
                self._died.send_exception(*exc_info)
            else:
                self._died.send(None)

    def _wait_for_kill(self) -> None:
        """Wait until a kill in progress (or done) has finished.

        The error the container was killed with is for ``wait()`` callers:
        a second ``stop()`` or ``kill()`` must not raise it.
        """
        try:
            self._died.wait()
        except Exception:  # noqa: BLE001 - the kill's error is for wait() callers
            pass

    def wait(self) -> None:
        """Block until the container dies; re-raise the error that killed it."""
        self._died.wait()

    def spawn_worker(
        self,
        entrypoint: Entrypoint,
        args: Iterable[Any],
        kwargs: dict[str, Any],
        context_data: dict[str, Any] | None = None,
        handle_result: ResultHandler | None = None,
    ) -> WorkerContext:
        """Run ``entrypoint``'s method in a new worker greenthread.

        Blocks while all ``max_workers`` workers are busy. Raises
        ``IncorrectSignature`` at once if the arguments don't fit the method,
        and ``ContainerBeingKilled`` if the container is going away.

        ``handle_result(worker_ctx, result, exc_info)`` is called in the
        worker once the method returned; it returns the (possibly changed)
        ``(result, exc_info)`` passed on to the dependencies.
        """
        worker_ctx = self._take_worker_slot(entrypoint, args, kwargs, context_data)
        # Registered before it can run: the greenlet is only scheduled. One
        # that ran an earlier worker, when nothing remembers it (a new
        # greenlet's frame stack is mapped and unmapped: worker_greenlet).
        self._worker_threads[worker_ctx] = spawn_in_worker_greenlet(
            self._idle_worker_greenlets, run_worker, self, worker_ctx, handle_result,
            entrypoint.method_name in self._async_methods, self._worker_done,
        )
        return worker_ctx

    def run_worker_here(
        self,
        entrypoint: Entrypoint,
        args: Iterable[Any],
        kwargs: dict[str, Any],
        context_data: dict[str, Any] | None = None,
        handle_result: ResultHandler | None = None,
        announce: Callable[[WorkerContext], object] | None = None,
    ) -> WorkerContext:
        """Run ``entrypoint``'s method for the calling greenthread; return once it ended.

        :meth:`spawn_worker` for a caller that would only wait for the worker
        (an HTTP request): no spawn, no switches through the hub. The worker
        runs in a child greenlet (:mod:`~nameko_like.worker_greenlet`; one
        that ran an earlier worker when nothing remembers it) with
        greenlet-local state and ``contextvars`` of its own, takes a slot,
        runs the same hooks, and ``kill``/``stop`` kill it like any worker.
        ``announce(worker_ctx)`` is called once the worker is registered,
        before it starts (where a spawning caller emits ``worker_spawned``).
        """
        worker_ctx = self._take_worker_slot(entrypoint, args, kwargs, context_data)
        if announce is not None:
            # until the worker starts, killing it kills the caller
            self._worker_threads[worker_ctx] = eventlet.getcurrent()
            announce(worker_ctx)
        run_in_child_greenlet(
            self._worker_threads, worker_ctx, run_worker, self, worker_ctx, handle_result,
            entrypoint.method_name in self._async_methods, self._worker_done,
            idle=self._idle_worker_greenlets,
        )
        return worker_ctx

    def _take_worker_slot(self, entrypoint: Entrypoint, args: Iterable[Any],
                          kwargs: dict[str, Any],
                          context_data: dict[str, Any] | None) -> WorkerContext:
        """Check the call, take a worker slot (waiting for one) and make the worker's context."""
        if self._being_killed:
            raise ContainerBeingKilled()
        if type(args) is not tuple:
            args = tuple(args)
        entrypoint.check_signature(args, kwargs)
        service = self.service_cls()
        worker_ctx = WorkerContext(self, service, entrypoint, args, kwargs, data=context_data)
        self._worker_slots.acquire()
        return worker_ctx

    def spawn_managed_thread(
        self, fn: Callable[[], object], identifier: str | None = None
    ) -> Any:
        """Run ``fn`` in a greenthread the container owns.

        The thread is killed when the container stops or is killed; if ``fn``
        raises, the container is killed with that error.
        """
        def run() -> object:
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - kills the container, logged
                # Handled here rather than left to the greenthread, whose
                # death by exception eventlet's hub would print a second time.
                _log.error("managed thread %s of %s raised", identifier or fn, self.service_name)
                self.kill(exc_info_of(exc))
                return None

        thread = eventlet.spawn(run)
        self._managed_threads[thread] = identifier
        thread.link(self._managed_thread_exited)
        return thread

    def _managed_thread_exited(self, thread: Any) -> None:  # an eventlet GreenThread
        self._managed_threads.pop(thread, None)

    def _worker_done(self, worker_ctx: WorkerContext) -> None:
        if self._worker_threads.pop(worker_ctx, None) is not None:
            self._worker_slots.release()
        if not self._worker_threads and self._workers_idle is not None:
            idle, self._workers_idle = self._workers_idle, None
            idle.send(True)

    def _kill_worker_threads(self) -> None:
        current = eventlet.getcurrent()
        for worker_ctx, thread in list(self._worker_threads.items()):
            if thread is current:
                continue
            _log.warning("killing worker %s of %s", worker_ctx.call_id, self.service_name)
            eventlet.kill(thread)
            # a greenlet killed before it started never reaches its finally
            self._worker_done(worker_ctx)

    def _kill_managed_threads(self) -> None:
        current = eventlet.getcurrent()
        for thread in list(self._managed_threads):
            if thread is not current:
                thread.kill()
        self._managed_threads.clear()

    def __repr__(self) -> str:
        return f"<ServiceContainer {self.service_name} at 0x{id(self):x}>"
