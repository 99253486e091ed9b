"""/metrics after real RPC, event and HTTP traffic on RabbitMQ: exact counts."""

import gc
import weakref

import kombu
import pytest
from kombu import Queue

from nameko_like import instrumentation
from nameko_like.containers import ServiceContainer
from nameko_like._eventlet import eventlet
from nameko_like.events import event_handler
from nameko_like.exceptions import RemoteError, RpcTimeout, UnknownService
from nameko_like.messaging import consume
from nameko_like.retries import Retry
from nameko_like.rpc import rpc
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.services import dummy, entrypoint_hook
from nameko_like.web.handlers import http

pytestmark = pytest.mark.integration


class Shop:
    name = "shop"
    seen: list = []

    @rpc
    def hello(self, who):
        return f"hello {who}"

    @rpc
    def broken(self):
        raise ValueError("boom")

    @rpc(expected_exceptions=KeyError)
    def missing(self):
        raise KeyError("nope")

    @rpc
    def slow(self):
        eventlet.sleep(1)

    @http("GET", "/items/<int:item_id>")
    def item(self, request, item_id):
        return f"item {item_id}"

    @event_handler("orders", "placed")
    def on_placed(self, payload):
        Shop.seen.append(payload)


def test_counts_after_real_traffic(container_factory, metrics_config, endpoint, web_session,
                                   web_config):
    config = dict(metrics_config, WEB_SERVER_ADDRESS=web_config["WEB_SERVER_ADDRESS"])
    container = container_factory(Shop, config)
    container.start()
    Shop.seen = []

    with ClusterRpcProxy(config, timeout=5) as cluster:
        for who in ("a", "b", "c"):
            assert cluster.shop.hello(who) == f"hello {who}"
        for _ in range(2):
            with pytest.raises(RemoteError):
                cluster.shop.broken()
        with pytest.raises(RemoteError, match="KeyError"):
            cluster.shop.missing()
        with pytest.raises(RpcTimeout):
            with ClusterRpcProxy(config, timeout=0.2) as hurried:
                hurried.shop.slow()
        with pytest.raises(UnknownService):
            cluster.nowhere.ping()

    for item_id in (1, 2, 3):
        assert web_session.get(f"/items/{item_id}").status_code == 200
    assert web_session.get("/items/xyz").status_code == 404

    dispatch = event_dispatcher(config)
    for n in range(2):
        dispatch("orders", "placed", {"n": n})

    def calls(method, outcome, samples=None):
        samples = samples or endpoint.scrape()
        return endpoint.value(samples, "nameko_like_entrypoint_calls_total", service="shop",
                              method=method, entrypoint=kinds[method], outcome=outcome)

    kinds = {"hello": "Rpc", "broken": "Rpc", "missing": "Rpc", "slow": "Rpc",
             "item": "HttpRequestHandler", "on_placed": "EventHandler"}
    endpoint.wait_until(lambda: calls("on_placed", "ok") == 2 and calls("slow", "ok") == 1)
    samples = endpoint.scrape()
    value = endpoint.value

    assert calls("hello", "ok", samples) == 3
    assert calls("broken", "error", samples) == 2
    assert calls("missing", "expected_error", samples) == 1
    assert calls("item", "ok", samples) == 3
    assert value(samples, "nameko_like_entrypoint_duration_seconds_count", service="shop",
                 method="hello", entrypoint="Rpc") == 3
    assert value(samples, "nameko_like_entrypoint_in_flight", service="shop", method="hello",
                 entrypoint="Rpc") == 0

    # client side, by target
    assert value(samples, "nameko_like_rpc_client_calls_total", target_service="shop",
                 target_method="hello") == 3
    assert value(samples, "nameko_like_rpc_client_duration_seconds_count",
                 target_service="shop", target_method="hello") == 3
    assert value(samples, "nameko_like_rpc_client_timeouts_total", target_service="shop",
                 target_method="slow") == 1
    assert value(samples, "nameko_like_rpc_client_errors_total", target_service="nowhere",
                 target_method="ping") == 1

    # HTTP by route template, never the raw path
    assert value(samples, "nameko_like_http_requests_total", service="shop",
                 route="/items/<int:item_id>", method="GET", status="200") == 3
    assert value(samples, "nameko_like_http_requests_total", service="shop",
                 route="<unmatched>", method="GET", status="404") == 1
    assert not [key for key in samples if "/items/1" in str(key)]

    assert value(samples, "nameko_like_worker_pool_size", service="shop") == 10
    assert value(samples, "nameko_like_workers_busy", service="shop") == 0
    # replies and the dispatches were confirmed by the broker
    confirms = value(samples, "nameko_like_publish_confirm_latency_seconds_count")
    assert confirms is not None and confirms >= 3


def test_endpoint_stops_with_the_last_container(container_factory, metrics_config, web_config,
                                                endpoint):
    from nameko_like import operations

    # Shop serves @http too: on a free port (the suite runs in several sessions)
    container = container_factory(Shop, dict(metrics_config, **web_config))
    container.start()
    assert endpoint.get("/health/live").json()["services"] == ["shop"]
    (server,) = operations.servers()
    assert {server, server.metrics} <= set(instrumentation.observers)
    container.stop()
    assert {server, server.metrics} & set(instrumentation.observers) == set()
    assert operations.servers() == []


class Jobs:
    name = "jobs"

    @consume(Queue("jobs-always-fail"), requeue_on_error=True)
    def always_fails(self, body):
        raise ValueError("broken job")

    @consume(Queue("jobs-flaky"), retry=Retry(on=OSError, attempts=2, backoff=0.05, jitter=0))
    def flaky(self, body):
        raise OSError("disk busy")

    @event_handler("orders", "placed", payload_filter={"keep": True})
    def kept(self, payload):
        pass


def test_message_fates_are_counted(container_factory, metrics_config, endpoint):
    """Requeues, retries, dead letters and filtered events, exact, in /metrics."""
    config = dict(metrics_config, MAX_REDELIVERIES=2)
    container = container_factory(Jobs, config)
    container.start()
    with kombu.Connection(config["AMQP_URI"]) as connection:
        producer = connection.Producer()
        producer.publish({"job": 1}, routing_key="jobs-always-fail", serializer="json")
        # undecodable: dead-lettered at once
        producer.publish(b"{not json", routing_key="jobs-always-fail",
                         content_type="application/json", content_encoding="utf-8")
        producer.publish({"job": 2}, routing_key="jobs-flaky", serializer="json")
    dispatch = event_dispatcher(config)
    dispatch("orders", "placed", {"keep": True})
    dispatch("orders", "placed", {"keep": False})

    # the always-failing job: 2 requeues then dead-lettered; the undecodable
    # one dead-lettered; the flaky job: 1 retry, then dead-lettered
    expected = {
        ("nameko_like_messages_dead_lettered_total", (("service", "jobs"),)): 3,
        ("nameko_like_messages_redelivered_total",
         (("by", "requeue"), ("queue", "jobs-always-fail"), ("service", "jobs"))): 2,
        ("nameko_like_messages_retried_total",
         (("queue", "jobs-flaky"), ("service", "jobs"))): 1,
        ("nameko_like_events_filtered_total", (("method", "kept"), ("service", "jobs"))): 1,
    }
    for method, kind, outcome, count in [("kept", "EventHandler", "ok", 1),
                                         ("always_fails", "Consumer", "error", 3),
                                         ("flaky", "Consumer", "error", 2)]:
        expected[("nameko_like_entrypoint_calls_total", tuple(sorted(
            {"service": "jobs", "method": method, "entrypoint": kind,
             "outcome": outcome}.items())))] = count

    def counted():
        samples = endpoint.scrape()
        return {key: samples.get(key) for key in expected}

    # a worker's end is counted just after its message's fate: wait for all
    endpoint.wait_until(lambda: counted() == expected)
    samples = endpoint.scrape()
    assert endpoint.value(samples, "nameko_like_messages_redelivered_total", service="jobs",
                          queue="jobs-always-fail", by="broker") is None


class Counter:
    name = "counter"

    @dummy
    def count(self):
        return "counted"


class Bystander:
    name = "bystander"

    @dummy
    def idle(self):
        return "idle"


def test_a_stopped_container_is_not_kept_alive_by_the_metrics_of_another(
    container_factory, endpoint
):
    config = {"METRICS_ADDRESS": "127.0.0.1:0"}
    container_factory(Bystander, config).start()  # keeps the metrics server up
    counter = ServiceContainer(Counter, config)
    counter.start()
    with entrypoint_hook(counter, "count") as count:
        assert count() == "counted"
    counter.stop()
    stopped = weakref.ref(counter)
    del counter, count
    gc.collect()
    assert stopped() is None
    # its series stay in /metrics
    assert endpoint.value(endpoint.scrape(), "nameko_like_entrypoint_calls_total",
                          service="counter", method="count", entrypoint="Dummy",
                          outcome="ok") == 1
