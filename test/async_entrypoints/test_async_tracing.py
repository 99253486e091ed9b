"""Tracing through ``async def`` handlers: one trace across awaited RPC calls and events."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_trace_id

from nameko_like import tracing
from nameko_like._eventlet import eventlet
from nameko_like.asyncio_support import is_asyncio_hub
from nameko_like.events import EventDispatcher, event_handler
from nameko_like.rpc import RpcProxy, rpc
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.services import entrypoint_waiter

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not is_asyncio_hub(),
                       reason="needs eventlet's asyncio hub (EVENTLET_HUB=asyncio)"),
]

EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans():
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    if not getattr(provider, "_async_test_exporter", False):
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        provider._async_test_exporter = True
    EXPORTER.clear()
    tracing.enable()
    try:
        yield EXPORTER
    finally:
        tracing.disable()
        EXPORTER.clear()


def current_trace_id() -> str:
    return format_trace_id(trace.get_current_span().get_span_context().trace_id)


class Trips:
    name = "async_trips"
    airports = RpcProxy("async_airports", timeout=10)
    dispatch = EventDispatcher()

    @rpc
    async def book(self, trip_id: int) -> dict[str, Any]:
        airport_trace = await self.airports.check("LHR")
        await self.dispatch("trip_booked", {"trip_id": trip_id})
        return {"trips": current_trace_id(), "airports": airport_trace}


class Airports:
    name = "async_airports"

    @rpc
    async def check(self, code: str) -> str:
        await asyncio.sleep(0)
        return current_trace_id()


class Notifier:
    name = "async_notifier"
    handled: list[str] = []

    @event_handler("async_trips", "trip_booked")
    async def handle(self, payload: dict[str, Any]) -> None:
        self.handled.append(current_trace_id())


def test_one_trace_across_awaited_calls_and_events(spans, container_factory, rabbit_config):
    Notifier.handled.clear()
    for service in (Trips, Airports):
        container_factory(service, rabbit_config).start()
    notifier = container_factory(Notifier, rabbit_config)
    notifier.start()
    with entrypoint_waiter(notifier, "handle"):
        with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
            seen = cluster.async_trips.book(7)
    assert seen["trips"] == seen["airports"] == Notifier.handled[0]

    def named(name):
        (span,) = [span for span in spans.get_finished_spans() if span.name == name]
        return span

    book_in = "process nameko-rpc:async_trips.book:rpc-async_trips"
    deadline = eventlet.Timeout(10)
    try:
        while book_in not in {span.name for span in spans.get_finished_spans()}:
            eventlet.sleep(0.02)
    finally:
        deadline.cancel()
    book = named(book_in)
    # the awaited call and the event are children of the async worker's span
    assert named("publish nameko-rpc:async_airports.check").parent.span_id == book.context.span_id
    assert named("publish async_trips.events:trip_booked").parent.span_id == book.context.span_id
    assert format_trace_id(book.context.trace_id) == seen["trips"]
