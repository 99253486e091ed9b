"""JSON log records from a worker carry the call's fields."""

import json
import logging

import pytest

from nameko_like.logging_json import JsonFormatter
from nameko_like.rpc import RpcProxy, rpc
from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.integration

app_log = logging.getLogger("test.operations.app")


class Back:
    name = "back"

    @rpc
    def work(self, n):
        app_log.info("working on %s", n, extra={"order": n})
        return n


class Front:
    name = "front"
    back = RpcProxy("back")

    @rpc
    def relay(self, n):
        app_log.warning("relaying %s", n)
        return self.back.work(n)


class Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines():
    handler = Lines()
    app_log.addHandler(handler)
    app_log.setLevel(logging.INFO)
    yield handler.lines
    app_log.removeHandler(handler)


def test_worker_records_carry_the_call(container_factory, rabbit_config, lines):
    for service in (Back, Front):
        container_factory(service, rabbit_config).start()
    with ClusterRpcProxy(rabbit_config, timeout=5) as cluster:
        assert cluster.front.relay(7) == 7
    app_log.info("outside any worker")

    relay, work, outside = lines
    assert relay["message"] == "relaying 7"
    assert relay["level"] == "WARNING"
    assert relay["service"] == "front"
    assert relay["entrypoint"] == "relay"
    assert relay["call_id"].startswith("front.relay.")
    assert relay["call_id_stack"][-1] == relay["call_id"]

    assert work["service"] == "back"
    assert work["entrypoint"] == "work"
    assert work["order"] == 7
    # the callee's stack goes through the caller
    assert work["call_id_stack"][-2:] == [relay["call_id"], work["call_id"]]
    assert work["logger"] == "test.operations.app"

    assert "service" not in outside
    assert "call_id" not in outside


class Traced:
    name = "traced"
    tracer = None  # set by the test, outside any worker (see below)

    @rpc
    def work(self):
        with self.tracer.start_as_current_span("inner") as span:
            app_log.info("inside a span")
            context = span.get_span_context()
            return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def test_records_carry_the_current_trace(container_factory, rabbit_config, lines, monkeypatch):
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    # Made at start-up as applications do, with its resource given: without
    # one, TracerProvider() detects it in an OS thread pool, which eventlet's
    # asyncio hub is not woken by: it waits out its 5 s time-out
    # (docs/migrating_off_eventlet.rst).
    provider = TracerProvider(resource=Resource.get_empty())
    monkeypatch.setattr(Traced, "tracer", provider.get_tracer("test"))
    container_factory(Traced, rabbit_config).start()
    with ClusterRpcProxy(rabbit_config, timeout=5) as cluster:
        trace_id, span_id = cluster.traced.work()
    (record,) = lines
    assert (record["trace_id"], record["span_id"]) == (trace_id, span_id)
    assert record["service"] == "traced"
