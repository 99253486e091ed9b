"""The instrumentation seam: observers the framework tells what it does.

The framework calls :func:`emit` at a handful of points (a worker starts and
ends, an RPC call is sent and answered, a message is dead-lettered, ...).
Metrics, health and structured logging are observers; so may be anything a
user writes. An observer subclasses :class:`Observer` and overrides the hooks
it cares about; the others are no-ops, never called: the hooks an observer
overrides are looked up once, when it is registered.

The cost when no observer is registered is one module attribute read and a
truth test of an empty tuple at each call site::

    if instrumentation.observers:
        instrumentation.emit("worker_started", worker_ctx)

Hooks run in the greenthread where the event happens (a worker's hooks in
the worker itself), so they must be quick and must not block. An observer
that raises is logged and skipped: instrumentation never breaks a call.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from nameko_like.worker_context import WorkerContext

_log = logging.getLogger(__name__)

__all__ = [
    "ERROR",
    "EXPECTED_ERROR",
    "OK",
    "UNOBSERVED",
    "Observer",
    "emit",
    "observed",
    "observers",
    "publishing",
    "register",
    "unregister",
]

#: Outcomes of a worker, as passed to :meth:`Observer.worker_finished`.
OK: Final = "ok"
#: The method raised one of its entrypoint's ``expected_exceptions``.
EXPECTED_ERROR: Final = "expected_error"
#: The method raised anything else (or the worker was killed).
ERROR: Final = "error"

#: The registered observers. A tuple, replaced as a whole on every change,
#: so call sites can test and iterate it without a lock.
observers: tuple[Observer, ...] = ()

_lock = threading.Lock()

#: Per hook, the ``(observer, bound hook)`` pairs of the observers that
#: override it; replaced as a whole with :data:`observers`.
_dispatch: dict[str, tuple[tuple[Observer, Callable[..., None]], ...]] = {}


class Observer:
    """Base class of observers: every hook is a documented no-op.

    Durations and latencies are in seconds (``time.perf_counter`` deltas).
    """

    # -- containers and workers --------------------------------------------------

    def container_started(self, container: Any) -> None:
        """``container`` has started every extension."""

    def container_stopped(self, container: Any) -> None:
        """``container`` has stopped (gracefully or killed)."""

    def worker_started(self, worker_ctx: WorkerContext) -> None:
        """A worker is about to run; called in the worker's greenthread."""

    def worker_spawned(self, worker_ctx: WorkerContext, origin: Any) -> None:
        """A worker was spawned for ``origin`` (the AMQP message, or the
        werkzeug ``Request``) and has not run yet; called in the greenthread
        that received it, so trace context can be handed to the worker."""

    def worker_finished(self, worker_ctx: WorkerContext, outcome: str, duration: float) -> None:
        """A worker ended with ``outcome`` (:data:`OK`, :data:`EXPECTED_ERROR`
        or :data:`ERROR`) after ``duration`` seconds; in the worker's greenthread,
        after every dependency's ``worker_teardown``."""

    # -- RPC client ----------------------------------------------------------------

    def rpc_call_sent(self, service_name: str, method_name: str) -> None:
        """An RPC request to ``service_name.method_name`` was published."""

    def rpc_call_replied(self, service_name: str, method_name: str, duration: float) -> None:
        """A reply arrived (a result or a remote error) ``duration`` s after sending."""

    def rpc_call_timed_out(self, service_name: str, method_name: str) -> None:
        """No reply arrived within the proxy's ``timeout``."""

    def rpc_call_errored(self, service_name: str, method_name: str, error: BaseException) -> None:
        """The call failed without a reply: unknown service, connection lost."""

    # -- messages ------------------------------------------------------------------

    def message_dead_lettered(self, service_name: str, reason: str) -> None:
        """A message consumed by ``service_name`` is being moved to its
        dead-letter queue; ``reason`` is free text (not fit for a label)."""

    def message_redelivered(self, service_name: str, queue_name: str, by_broker: bool) -> None:
        """A message on ``queue_name`` gets another attempt: it was requeued by
        nameko_like's bounded requeue, or (``by_broker``) the broker delivered
        it again after a lost connection or a reject."""

    def message_retry_scheduled(self, service_name: str, queue_name: str, delay: float) -> None:
        """A message on ``queue_name`` whose handler failed waits ``delay``
        seconds for its next attempt (``retry=`` of its entrypoint)."""

    def event_filtered(self, service_name: str, method_name: str) -> None:
        """An event for ``service_name.method_name`` did not pass its handler's
        ``payload_filter``: it was acknowledged without running the handler."""

    def message_publishing(self, exchange: str, routing_key: str, headers: dict[str, Any],
                           correlation_id: str | None) -> None:
        """A message is about to be published from this greenthread; an observer
        may add to its ``headers`` (trace context). Always followed, in the same
        greenthread, by :meth:`message_published` (see :func:`publishing`)."""

    def message_published(self, exchange: str, routing_key: str,
                          error: BaseException | None) -> None:
        """The publish announced by :meth:`message_publishing` returned (or
        raised ``error``)."""

    def publish_confirmed(self, latency: float) -> None:
        """The broker confirmed a publish ``latency`` seconds after it was written."""

    def broker_reconnected(self, role: str) -> None:
        """A connection (``role``: ``"consumer"`` or ``"publisher"``) came back."""

    # -- HTTP ----------------------------------------------------------------------

    def http_request_started(self, environ: Mapping[str, Any]) -> None:
        """An HTTP request arrived; called in the greenthread serving it, which
        later calls :meth:`http_request_done`."""

    def http_request_done(self, service_name: str, route: str, method: str, status: int,
                          duration: float) -> None:
        """An HTTP request to the route *template* ``route`` (never the raw path)
        was answered with ``status`` after ``duration`` seconds."""


#: What call sites use in place of :func:`publishing` when nothing observes.
UNOBSERVED: Final = contextlib.nullcontext()


class _Publishing:
    """The context manager :func:`publishing` returns (a class: cheaper than a generator)."""

    __slots__ = ("correlation_id", "exchange", "headers", "routing_key")

    def __init__(self, exchange: str, routing_key: str, headers: dict[str, Any],
                 correlation_id: str | None) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.headers = headers
        self.correlation_id = correlation_id

    def __enter__(self) -> None:
        emit("message_publishing", self.exchange, self.routing_key, self.headers,
             self.correlation_id)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        emit("message_published", self.exchange, self.routing_key, exc)


def publishing(exchange: str, routing_key: str, headers: dict[str, Any],
               correlation_id: str | None = None) -> AbstractContextManager[None]:
    """Tell the observers about the publish run in the ``with`` block.

    ``headers`` is the dict the message is published with: observers may
    add to it before the block runs. Call sites pay nothing when no
    observer is registered::

        with (instrumentation.publishing(exchange, key, headers)
              if instrumentation.observers else instrumentation.UNOBSERVED):
            publisher.publish(body, headers=headers, ...)

    With observers that watch no publish (metrics alone) it returns
    :data:`UNOBSERVED` too.
    """
    if "message_publishing" not in _dispatch and "message_published" not in _dispatch:
        return UNOBSERVED
    return _Publishing(exchange, routing_key, headers, correlation_id)


def _overridden_hooks(observer: Observer) -> dict[str, Callable[..., None]]:
    """``observer``'s hooks that do something: those its class (or itself) overrides."""
    hooks = {}
    for name, base in vars(Observer).items():
        if name.startswith("_") or not callable(base):
            continue
        if getattr(type(observer), name, base) is not base or name in vars(observer):
            hooks[name] = getattr(observer, name)
    return hooks


def _rebuild_dispatch() -> None:
    """Recompute :data:`_dispatch` from :data:`observers` (under ``_lock``)."""
    global _dispatch
    table: dict[str, list[tuple[Observer, Callable[..., None]]]] = {}
    for observer in observers:
        for name, method in _overridden_hooks(observer).items():
            table.setdefault(name, []).append((observer, method))
    _dispatch = {name: tuple(methods) for name, methods in table.items()}


def register(observer: Observer) -> None:
    """Add ``observer`` (once: registering it again does nothing)."""
    global observers
    with _lock:
        if observer not in observers:
            observers = (*observers, observer)
            _rebuild_dispatch()


def unregister(observer: Observer) -> None:
    """Remove ``observer``; unknown observers are ignored."""
    global observers
    with _lock:
        observers = tuple(obs for obs in observers if obs is not observer)
        _rebuild_dispatch()


def observed(hook: str) -> bool:
    """Whether a registered observer overrides ``hook``.

    For call sites whose hook needs work beforehand (a timestamp kept per
    publish, say): they skip it when nothing would use it.
    """
    return hook in _dispatch


def emit(hook: str, *args: Any) -> None:
    """Call ``hook(*args)`` on every observer; one that raises is logged and skipped.

    Only observers that override ``hook`` are called (looked up when they
    were registered): the others' would be no-ops.
    """
    for observer, method in _dispatch.get(hook, ()):
        try:
            method(*args)
        except Exception:  # noqa: BLE001 - instrumentation must never break a call
            _log.exception("observer %r failed in %s", observer, hook)
