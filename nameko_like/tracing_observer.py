"""The tracing observer: OpenTelemetry spans from the instrumentation hooks.

Spans follow OpenTelemetry's semantic conventions for RabbitMQ messaging
(``publish <destination>`` PRODUCER spans, ``process <destination>``
CONSUMER spans, ``messaging.*`` attributes) and for HTTP servers
(``<METHOD> <route>`` SERVER spans). Attribute building is in
:mod:`nameko_like.tracing_spans`.

A worker's span is made current (``opentelemetry.context.attach``) in the
worker's own greenthread for as long as it runs, so spans the service
makes, the messages it publishes and its log records all join the trace.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from nameko_like import __version__, instrumentation, tracing_spans
from nameko_like.tracing_carriers import (
    extract_from_environ,
    extract_from_headers,
    inject_into_headers,
)

if TYPE_CHECKING:
    from nameko_like.worker_context import WorkerContext

#: Spans under way in this greenthread (publishes, HTTP requests), newest
#: first, as ``(span, token to detach or None, rest)`` links: the hooks that
#: end them run in the greenthread that started them.
_Stack = tuple[Span, object, "Any"]
_open: contextvars.ContextVar[_Stack | None] = contextvars.ContextVar(
    "nameko_like_open_spans", default=None)


def _push(span: Span, token: object) -> None:
    _open.set((span, token, _open.get()))


def _pop() -> tuple[Span, object] | None:
    top = _open.get()
    if top is None:
        return None
    span, token, rest = top
    _open.set(rest)
    return span, token


class _WorkerSpan:
    """The span (and context) a worker runs in, from spawn to finish."""

    __slots__ = ("context", "owned", "span", "token")

    def __init__(self, span: Span, context: otel_context.Context, owned: bool) -> None:
        self.span = span
        self.context = context
        #: whether the worker's end ends the span (an HTTP request's span
        #: ends with the response instead)
        self.owned = owned
        self.token: object = None


class TracingObserver(instrumentation.Observer):
    """Makes spans and propagates trace context; see :mod:`nameko_like.tracing`."""

    def __init__(self) -> None:
        # A ProxyTracer until the program sets a TracerProvider, then that
        # provider's: looked up once, it still follows a later set-up.
        self.tracer = trace.get_tracer("nameko_like", __version__)
        # Weak: a worker killed before it ran never reaches worker_finished.
        self._workers: WeakKeyDictionary[WorkerContext, _WorkerSpan] = WeakKeyDictionary()

    # -- workers -----------------------------------------------------------------

    def worker_spawned(self, worker_ctx: WorkerContext, origin: Any) -> None:
        """Start the CONSUMER span of a message's worker, continuing its trace.

        For an HTTP request the worker runs in the request's SERVER span,
        current in this (the request's) greenthread.
        """
        headers = getattr(origin, "headers", None)
        # type() first: headers are a dict but for the odd custom message
        if (type(headers) is dict or isinstance(headers, Mapping)) and hasattr(
                origin, "delivery_info"):
            parent = extract_from_headers(headers)
            # the message's own attributes are built only if the span keeps them
            name, attributes = tracing_spans.consumer(worker_ctx, origin)
            span = self.tracer.start_span(name, parent, SpanKind.CONSUMER, attributes)
            self._workers[worker_ctx] = _WorkerSpan(
                span, trace.set_span_in_context(span, parent), owned=True)
        else:
            current = otel_context.get_current()
            span = trace.get_current_span(current)
            if span.is_recording():  # the request's: say who answers it
                span.set_attributes(tracing_spans.worker_attributes(worker_ctx))
            self._workers[worker_ctx] = _WorkerSpan(span, current, owned=False)

    def worker_started(self, worker_ctx: WorkerContext) -> None:
        """Make the worker's span current in the worker's greenthread."""
        entry = self._workers.get(worker_ctx)
        if entry is None:
            if not getattr(worker_ctx.entrypoint, "traced", True):
                return  # a health check run by a probe
            # nothing announced it (a timer, websocket RPC, a custom
            # entrypoint): the worker starts a trace of its own
            name, kind, attributes = tracing_spans.worker(worker_ctx)
            span = self.tracer.start_span(name, otel_context.Context(), kind, attributes)
            entry = _WorkerSpan(span, trace.set_span_in_context(span), owned=True)
            self._workers[worker_ctx] = entry
        entry.token = otel_context.attach(entry.context)

    def worker_finished(self, worker_ctx: WorkerContext, outcome: str, duration: float) -> None:
        """End the worker's span (unless an HTTP response ends it)."""
        entry = self._workers.pop(worker_ctx, None)
        if entry is None:
            return
        if entry.token is not None:
            otel_context.detach(entry.token)  # type: ignore[arg-type]
        if entry.owned:
            if outcome == instrumentation.ERROR:
                entry.span.set_status(Status(StatusCode.ERROR))
                entry.span.set_attribute("error.type", "_OTHER")
            entry.span.end()

    # -- publishing ----------------------------------------------------------------

    def message_publishing(self, exchange: str, routing_key: str, headers: dict[str, Any],
                           correlation_id: str | None) -> None:
        """Start a PRODUCER span and put its context in the message's headers."""
        parent = otel_context.get_current()
        name, attributes = tracing_spans.producer(exchange, routing_key, correlation_id)
        span = self.tracer.start_span(name, parent, SpanKind.PRODUCER, attributes)
        # The receiving side continues from this span: the message's own,
        # never a context the worker was called with.
        inject_into_headers(headers, trace.set_span_in_context(span, parent))
        _push(span, None)

    def message_published(self, exchange: str, routing_key: str,
                          error: BaseException | None) -> None:
        """End the PRODUCER span (with the error, if the publish failed)."""
        top = _pop()
        if top is None:
            return
        span = top[0]
        if error is not None:
            _fail(span, error)
        span.end()

    # -- HTTP ----------------------------------------------------------------------

    def http_request_started(self, environ: Mapping[str, Any]) -> None:
        """Start the request's SERVER span, continuing the caller's trace."""
        parent = extract_from_environ(environ)
        name, attributes = tracing_spans.http_request(environ)
        span = self.tracer.start_span(name, parent, SpanKind.SERVER, attributes)
        _push(span, otel_context.attach(trace.set_span_in_context(span, parent)))

    def http_request_done(self, service_name: str, route: str, method: str, status: int,
                          duration: float) -> None:
        """Name the SERVER span after its route template, record the status, end it."""
        top = _pop()
        if top is None:
            return
        span, token = top
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
        tracing_spans.http_response(span, route, method, status)
        span.end()


def _fail(span: Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    span.set_attribute("error.type", type(error).__qualname__)
