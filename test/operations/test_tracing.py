"""Distributed tracing, checked with the OpenTelemetry SDK's in-memory exporter.

Real broker, real HTTP. The SDK allows one global TracerProvider per
process: the first test here sets one up with an in-memory exporter, and
every test starts from an empty exporter.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import amqp
import pytest
import requests
from kombu import Exchange, Queue
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import ReadableSpan, Tracer, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Sampler, SamplingResult
from opentelemetry.trace import SpanContext, SpanKind, StatusCode, TraceFlags, format_trace_id

from nameko_like import tracing
from nameko_like._eventlet import eventlet
from nameko_like.events import EventDispatcher, event_handler
from nameko_like.health import health_check
from nameko_like.messaging import Publisher, consume
from nameko_like.rpc import RpcProxy, rpc
from nameko_like.web.handlers import http
from nameko_like.web.websocket import rpc as websocket_rpc

pytestmark = pytest.mark.integration

_EXPORTER = InMemorySpanExporter()


def _install_provider() -> None:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    if not getattr(provider, "_nameko_like_test_exporter", False):
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        provider._nameko_like_test_exporter = True  # type: ignore[attr-defined]


class Spans:
    """The spans finished so far, and ways to find them."""

    def all(self) -> list[ReadableSpan]:
        return list(_EXPORTER.get_finished_spans())

    def wait_for(self, *names: str, timeout: float = 10.0) -> None:
        """Wait until a span of each of ``names`` has finished."""
        with eventlet.Timeout(timeout, AssertionError(
                f"never finished: {names}; finished: {[s.name for s in self.all()]}")):
            while not set(names) <= {span.name for span in self.all()}:
                eventlet.sleep(0.02)

    def named(self, name: str) -> ReadableSpan:
        found = [span for span in self.all() if span.name == name]
        assert len(found) == 1, (name, [span.name for span in self.all()])
        return found[0]


@pytest.fixture
def spans() -> Iterator[Spans]:
    """Tracing on, spans exported to memory; tracing off again after the test."""
    _install_provider()
    _EXPORTER.clear()
    tracing.enable()
    try:
        yield Spans()
    finally:
        tracing.disable()
        _EXPORTER.clear()


def client_span_headers(name: str) -> tuple[trace.Span, dict[str, str]]:
    """A test-side span and the trace headers the propagator makes for it."""
    span = trace.get_tracer("tests").start_span(name, kind=SpanKind.CLIENT)
    headers: dict[str, str] = {}
    propagate.inject(headers, context=trace.set_span_in_context(span))
    span.end()
    return span, headers


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def current_trace_id() -> str:
    """The trace id of the span current where this runs (inside a worker)."""
    return format_trace_id(trace.get_current_span().get_span_context().trace_id)


# -- HTTP -> RPC -> RPC -> event ---------------------------------------------------------


class Gateway:
    name = "gateway"
    trips = RpcProxy("trips", timeout=10)

    @http("GET", "/trips/<int:trip_id>")
    def book(self, request: Any, trip_id: int) -> str:
        return json.dumps(self.trips.book(trip_id))


class Trips:
    name = "trips"
    airports = RpcProxy("airports", timeout=10)
    dispatch = EventDispatcher()

    @rpc
    def book(self, trip_id: int) -> dict[str, Any]:
        airport_trace = self.airports.check("LHR")
        self.dispatch("trip_booked", {"trip_id": trip_id})
        return {"trips": current_trace_id(), "airports": airport_trace}


class Airports:
    name = "airports"

    @rpc
    def check(self, code: str) -> str:
        return current_trace_id()


handled: list[str] = []


class Notifier:
    name = "notifier"

    @event_handler("trips", "trip_booked")
    def handle(self, payload: dict[str, Any]) -> None:
        handled.append(current_trace_id())


def test_one_trace_spans_http_two_rpc_hops_and_an_event(
        spans: Spans, runner_factory: Any, rabbit_config: dict[str, Any],
        web_config: dict[str, Any], web_config_port: int) -> None:
    handled.clear()
    config = dict(rabbit_config, **web_config)
    runner = runner_factory(config, Gateway, Trips, Airports, Notifier)
    runner.start()
    client, headers = client_span_headers("browser")
    trace_id = client.get_span_context().trace_id

    response = requests.get(f"http://127.0.0.1:{web_config_port}/trips/7", headers=headers,
                            timeout=10)

    assert response.status_code == 200
    seen = json.loads(response.text)
    # the workers' current span is theirs, in the caller's trace
    assert seen == {"trips": format_trace_id(trace_id), "airports": format_trace_id(trace_id)}
    http_name = "GET /trips/<int:trip_id>"
    book_out = "publish nameko-rpc:trips.book"
    book_in = "process nameko-rpc:trips.book:rpc-trips"
    check_out = "publish nameko-rpc:airports.check"
    check_in = "process nameko-rpc:airports.check:rpc-airports"
    event_out = "publish trips.events:trip_booked"
    event_in = "process trips.events:trip_booked:evt-trips-trip_booked--notifier.handle"
    spans.wait_for(http_name, book_out, book_in, check_out, check_in, event_out, event_in)
    assert handled == [format_trace_id(trace_id)]

    # every span in the one trace, each the child of the one before it
    chain = [(http_name, client.get_span_context().span_id), (book_out, http_name),
             (book_in, book_out), (check_out, book_in), (check_in, check_out),
             (event_out, book_in), (event_in, event_out)]
    for name, parent in chain:
        span = spans.named(name)
        assert span.context.trace_id == trace_id, name
        expected = parent if isinstance(parent, int) else spans.named(parent).context.span_id
        assert parent_of(span) == expected, name
    assert {span.context.trace_id for span in spans.all()} == {trace_id}

    server = spans.named(http_name)
    assert server.kind == SpanKind.SERVER
    assert server.attributes is not None
    assert dict(server.attributes) == {
        "http.request.method": "GET", "url.path": "/trips/7", "url.scheme": "http",
        "network.protocol.version": "1.1",
        "user_agent.original": requests.utils.default_user_agent(),
        "client.address": "127.0.0.1", "http.route": "/trips/<int:trip_id>",
        "http.response.status_code": 200,
        "nameko.service": "gateway", "nameko.entrypoint": "book",
        "nameko.call_id": server.attributes["nameko.call_id"],
    }
    producer = spans.named(book_out)
    assert producer.kind == SpanKind.PRODUCER
    assert producer.attributes is not None
    conversation = producer.attributes["messaging.message.conversation_id"]
    assert dict(producer.attributes) == {
        "messaging.system": "rabbitmq", "messaging.operation.type": "send",
        "messaging.operation.name": "publish",
        "messaging.destination.name": "nameko-rpc:trips.book",
        "messaging.rabbitmq.destination.routing_key": "trips.book",
        "messaging.message.conversation_id": conversation,
    }
    consumer = spans.named(book_in)
    assert consumer.kind == SpanKind.CONSUMER
    assert consumer.attributes is not None
    attributes = dict(consumer.attributes)
    assert attributes.pop("nameko.call_id").startswith("trips.book.")
    assert isinstance(attributes.pop("messaging.rabbitmq.message.delivery_tag"), int)
    assert attributes == {
        "messaging.system": "rabbitmq", "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "nameko-rpc:trips.book:rpc-trips",
        "messaging.rabbitmq.destination.routing_key": "trips.book",
        "messaging.message.conversation_id": conversation,
        "messaging.message.body.size": len(b'{"args": [7], "kwargs": {}}'),
        "nameko.service": "trips", "nameko.entrypoint": "book",
    }
    assert spans.named(event_in).kind == SpanKind.CONSUMER
    assert spans.named(event_out).kind == SpanKind.PRODUCER


# -- a raw py-amqp message carrying a traceparent ----------------------------------------


relayed: list[dict[str, Any]] = []


class Relay:
    name = "relay"
    airports = RpcProxy("airports", timeout=10)
    dispatch = EventDispatcher()

    @consume(Queue("raw-in", exchange=Exchange("raw", type="topic", durable=True),
                   routing_key="job", durable=True))
    def relay(self, payload: dict[str, Any]) -> None:
        relayed.append({"worker": current_trace_id(),
                        "rpc": self.airports.check("CDG")})
        self.dispatch("relayed", payload)


def _publish_raw(config: dict[str, Any], headers: dict[str, Any]) -> None:
    uri = config["AMQP_URI"]
    host_vhost = uri.split("@", 1)[1]
    host, _, vhost = host_vhost.partition("/")
    with amqp.Connection(host=host, userid="guest", password="guest",
                         virtual_host=vhost or "/") as connection:
        channel = connection.channel()
        channel.basic_publish(
            amqp.Message(b'{"n": 1}', content_type="application/json",
                         application_headers=headers),
            exchange="raw", routing_key="job")


def _bind_listener(config: dict[str, Any], exchange: str, routing_key: str) -> Any:
    uri = config["AMQP_URI"]
    host, _, vhost = uri.split("@", 1)[1].partition("/")
    connection = amqp.Connection(host=host, userid="guest", password="guest",
                                 virtual_host=vhost or "/")
    connection.connect()
    channel = connection.channel()
    channel.exchange_declare(exchange, "topic", durable=True, auto_delete=False)
    queue, _, _ = channel.queue_declare("", exclusive=True)
    channel.queue_bind(queue, exchange, routing_key)
    return connection, channel, queue


@pytest.mark.parametrize("header", ["traceparent", "nameko.traceparent"])
def test_a_raw_message_with_a_traceparent_continues_its_trace(
        spans: Spans, runner_factory: Any, rabbit_config: dict[str, Any], header: str) -> None:
    relayed.clear()
    runner = runner_factory(rabbit_config, Relay, Airports)
    runner.start()
    connection, channel, listener = _bind_listener(rabbit_config, "relay.events", "relayed")
    try:
        upstream, trace_headers = client_span_headers("faststream-publisher")
        trace_id = upstream.get_span_context().trace_id
        # as opentelemetry-instrumentation-nameko writes it, or as aio-pika's
        incoming = {header: trace_headers["traceparent"], "x-tenant": "acme"}
        _publish_raw(rabbit_config, incoming)

        process = "process raw:job:raw-in"
        spans.wait_for(process, "publish relay.events:relayed")
        assert relayed == [{"worker": format_trace_id(trace_id),
                            "rpc": format_trace_id(trace_id)}]
        assert parent_of(spans.named(process)) == upstream.get_span_context().span_id

        with eventlet.Timeout(10):
            while (message := channel.basic_get(listener, no_ack=True)) is None:
                eventlet.sleep(0.02)
    finally:
        connection.close()
    out_headers = message.properties["application_headers"]
    # the event carries the trace on: the current span's context, plain
    # header, and no stale copy of the incoming one as context data
    carried = trace.get_current_span(propagate.extract(out_headers)).get_span_context()
    assert carried.trace_id == trace_id
    assert carried.span_id == spans.named("publish relay.events:relayed").context.span_id
    assert "nameko.traceparent" not in out_headers
    assert out_headers["nameko.x-tenant"] == "acme"


# -- @consume and Publisher on the default exchange, errors -------------------------------


class Worker:
    name = "worker"
    publish = Publisher(queue=Queue("jobs", durable=True))

    @rpc
    def submit(self, job: str) -> None:
        self.publish({"job": job})

    @consume(Queue("jobs", durable=True))
    def work(self, payload: dict[str, Any]) -> None:
        if payload["job"] == "fail":
            raise ValueError("no")


def test_consume_and_publisher_spans(spans: Spans, container_factory: Any,
                                     rabbit_config: dict[str, Any]) -> None:
    from nameko_like.standalone.rpc import ServiceRpcProxy

    container = container_factory(Worker, rabbit_config)
    container.start()
    with ServiceRpcProxy("worker", rabbit_config, timeout=10) as worker:
        worker.submit("fail")
    # the default exchange: the destination is the routing key, which is the queue
    spans.wait_for("publish jobs", "process jobs")
    published, processed = spans.named("publish jobs"), spans.named("process jobs")
    assert parent_of(processed) == published.context.span_id
    assert published.attributes is not None and processed.attributes is not None
    assert published.attributes["messaging.destination.name"] == "jobs"
    assert processed.attributes["messaging.destination.name"] == "jobs"
    assert "messaging.destination.name" in published.attributes
    # the handler raised: the span says so
    assert processed.status.status_code == StatusCode.ERROR
    assert processed.attributes["error.type"] == "_OTHER"


def test_config_key_switches_tracing_on(container_factory: Any,
                                        rabbit_config: dict[str, Any]) -> None:
    assert not tracing.enabled()
    container = container_factory(Airports, dict(rabbit_config, TRACING=True))
    try:
        container.start()
        assert tracing.enabled()
    finally:
        tracing.disable()


def test_tracing_off_adds_no_headers_and_no_spans(
        runner_factory: Any, rabbit_config: dict[str, Any]) -> None:
    _install_provider()
    _EXPORTER.clear()
    relayed.clear()
    runner = runner_factory(rabbit_config, Relay, Airports)
    runner.start()
    connection, channel, listener = _bind_listener(rabbit_config, "relay.events", "relayed")
    try:
        _, trace_headers = client_span_headers("upstream")
        _publish_raw(rabbit_config, dict(trace_headers))
        with eventlet.Timeout(10):
            while (message := channel.basic_get(listener, no_ack=True)) is None:
                eventlet.sleep(0.02)
    finally:
        connection.close()
    headers = message.properties["application_headers"]
    # no trace headers, and the incoming ones are not context data either
    assert not {"traceparent", "nameko.traceparent", "tracestate"} & set(headers)
    assert [s.name for s in _EXPORTER.get_finished_spans()] == ["upstream"]


# -- websocket RPC, timers, HTTP errors --------------------------------------------------


class Live:
    name = "live"
    airports = RpcProxy("airports", timeout=10)

    @websocket_rpc
    def lookup(self, socket_id: str, code: str) -> str:
        return self.airports.check(code)

    @http("GET", "/boom")
    def boom(self, request: Any) -> str:
        raise RuntimeError("boom")


def test_websocket_calls_and_http_errors(
        spans: Spans, runner_factory: Any, rabbit_config: dict[str, Any],
        web_config: dict[str, Any], web_config_port: int, websocket: Any) -> None:
    runner = runner_factory(dict(rabbit_config, **web_config), Live, Airports)
    runner.start()
    client = websocket()
    trace_id = client.rpc("lookup", code="NRT")

    spans.wait_for("live/lookup", "process nameko-rpc:airports.check:rpc-airports")
    call = spans.named("live/lookup")
    assert call.kind == SpanKind.SERVER
    assert format_trace_id(call.context.trace_id) == trace_id
    assert call.attributes is not None
    assert call.attributes["rpc.system"] == "nameko_websocket"
    assert call.attributes["rpc.method"] == "lookup"
    assert parent_of(spans.named("publish nameko-rpc:airports.check")) == call.context.span_id

    response = requests.get(f"http://127.0.0.1:{web_config_port}/boom", timeout=10)
    assert response.status_code == 500
    spans.wait_for("GET /boom")
    failed = spans.named("GET /boom")
    assert failed.status.status_code == StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "500"
    assert failed.attributes["http.response.status_code"] == 500


class Checked:
    name = "checked"

    @health_check
    def fine(self) -> bool:
        return True

    @rpc
    def ping(self) -> str:
        return "pong"


def test_health_check_methods_start_no_trace(spans: Spans, container_factory: Any,
                                             rabbit_config: dict[str, Any]) -> None:
    import requests

    from nameko_like import operations
    from nameko_like.standalone.rpc import ServiceRpcProxy

    container = container_factory(Checked, dict(rabbit_config, METRICS_ADDRESS="127.0.0.1:0"))
    container.start()
    url = operations.servers()[0].url
    for _ in range(3):
        ready = requests.get(url + "/health/ready", timeout=5)
        assert ready.json()["checks"][0]["ok"] is True
    with ServiceRpcProxy("checked", rabbit_config, timeout=10) as checked:
        assert checked.ping() == "pong"
    spans.wait_for("process nameko-rpc:checked.ping:rpc-checked")
    # the probes ran the check three times, as workers, and made no span
    assert sorted(span.name for span in spans.all()) == [
        "process nameko-rpc:checked.ping:rpc-checked", "publish nameko-rpc:checked.ping"]


# -- sampling --------------------------------------------------------------------------


class _SeenBySampler(Sampler):
    """Samples every span (as ALWAYS_ON does), noting what each start showed it."""

    def __init__(self) -> None:
        self.starts: dict[str, dict[str, Any]] = {}

    def should_sample(self, parent_context: Any, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Any = None,
                      links: Any = None, trace_state: Any = None) -> SamplingResult:
        self.starts[name] = dict(attributes or {})
        return ALWAYS_ON.should_sample(parent_context, trace_id, name, kind, attributes, links,
                                       trace_state)

    def get_description(self) -> str:
        return "SeenBySampler"


CHECK_IN = "process nameko-rpc:airports.check:rpc-airports"


@pytest.fixture
def sampler(spans: Spans) -> Iterator[_SeenBySampler]:
    """The sampler of nameko_like's tracer for one test."""
    from nameko_like import __version__

    # the provider keeps one tracer per instrumentation scope: nameko_like's
    tracer = trace.get_tracer("nameko_like", __version__)
    assert isinstance(tracer, Tracer)
    kept, seen = tracer.sampler, _SeenBySampler()
    tracer.sampler = seen
    try:
        yield seen
    finally:
        tracer.sampler = kept


def test_a_sampler_sees_every_attribute_of_a_consumer_span_and_each_span_its_own(
        sampler: _SeenBySampler, spans: Spans, container_factory: Any,
        rabbit_config: dict[str, Any]) -> None:
    from nameko_like.standalone.rpc import ServiceRpcProxy

    container = container_factory(Airports, rabbit_config)
    container.start()
    with ServiceRpcProxy("airports", rabbit_config, timeout=10) as airports:
        airports.check("LHR")
        first = dict(sampler.starts[CHECK_IN])
        airports.check("CDG")
    spans.wait_for(CHECK_IN)

    # built when read (a dropped span's never are), the message's own
    # attributes are there for a sampler that looks
    static = {
        "messaging.system": "rabbitmq", "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "nameko-rpc:airports.check:rpc-airports",
        "messaging.rabbitmq.destination.routing_key": "airports.check",
        "nameko.service": "airports", "nameko.entrypoint": "check",
    }
    processed = [span for span in spans.all() if span.name == CHECK_IN]
    assert len(processed) == 2
    call_ids = set()
    for span in processed:
        assert span.attributes is not None
        attributes = dict(span.attributes)
        call_ids.add(attributes.pop("nameko.call_id"))
        assert isinstance(attributes.pop("messaging.rabbitmq.message.delivery_tag"), int)
        assert isinstance(attributes.pop("messaging.message.conversation_id"), str)
        assert attributes == {**static, "messaging.message.body.size": len(
            b'{"args": ["LHR"], "kwargs": {}}')}
    assert len(call_ids) == 2  # each span its own, the shared start untouched
    assert first == dict(processed[0].attributes or {})
    assert sampler.starts[CHECK_IN] == dict(processed[1].attributes or {})


def test_an_unsampled_trace_records_nothing_and_carries_on_unsampled(
        spans: Spans, container_factory: Any, rabbit_config: dict[str, Any]) -> None:
    from nameko_like.standalone.rpc import ServiceRpcProxy

    for service in (Trips, Airports, Notifier):
        container_factory(service, rabbit_config).start()
    # the caller's trace, which its sampler dropped (the default sampler
    # follows the parent's decision)
    caller = trace.NonRecordingSpan(SpanContext(
        0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=False,
        trace_flags=TraceFlags(TraceFlags.DEFAULT)))
    token = otel_context.attach(trace.set_span_in_context(caller))
    try:
        with ServiceRpcProxy("trips", rabbit_config, timeout=10) as trips:
            seen = trips.book(3)
    finally:
        otel_context.detach(token)
    # the workers ran in the caller's trace, their spans not recorded
    trace_id = format_trace_id(caller.get_span_context().trace_id)
    assert seen == {"trips": trace_id, "airports": trace_id}
    eventlet.sleep(0.3)  # the event's handler, a span if it were recorded
    assert spans.all() == []


class _WritingSampler(_SeenBySampler):
    """A sampler that writes into the attributes it is given (the SDK types
    them read-only; a plain dict used to allow it, and some samplers do)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def should_sample(self, parent_context: Any, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Any = None,
                      links: Any = None, trace_state: Any = None) -> SamplingResult:
        self.calls += 1
        if attributes is not None:
            attributes[f"sampler.call.{self.calls}"] = self.calls
        return super().should_sample(parent_context, trace_id, name, kind, attributes, links,
                                     trace_state)


def test_a_sampler_writing_into_attributes_touches_only_its_own_span(
        spans: Spans, container_factory: Any, rabbit_config: dict[str, Any]) -> None:
    from nameko_like import __version__
    from nameko_like.standalone.rpc import ServiceRpcProxy

    tracer = trace.get_tracer("nameko_like", __version__)
    assert isinstance(tracer, Tracer)
    kept, tracer.sampler = tracer.sampler, _WritingSampler()
    handled.clear()
    try:
        for service in (Trips, Airports, Notifier):
            container_factory(service, rabbit_config).start()
        with ServiceRpcProxy("trips", rabbit_config, timeout=10) as trips:
            trips.book(1)
            trips.book(2)
        event_out = "publish trips.events:trip_booked"
        event_in = "process trips.events:trip_booked:evt-trips-trip_booked--notifier.handle"
        check_in = "process nameko-rpc:airports.check:rpc-airports"
        spans.wait_for(event_out, event_in, check_in)
        deadline = time.monotonic() + 10
        while len([s for s in spans.all() if s.name == event_in]) < 2:
            assert time.monotonic() < deadline, "the second event's span never came"
            eventlet.sleep(0.05)
    finally:
        tracer.sampler = kept
    for name in (event_out, event_in, check_in):
        for span in (s for s in spans.all() if s.name == name):
            marks = [key for key in span.attributes or {} if key.startswith("sampler.call.")]
            # the sampler's own write for this span, none from other spans
            assert len(marks) == 1, (name, marks)
            if name != event_out:
                assert span.parent is not None  # the CONSUMER span joined its trace
