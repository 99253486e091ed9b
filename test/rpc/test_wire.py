"""RPC on the wire, as RabbitMQ's management API sees it: Nameko 2.x's names and shapes."""

import json
import re

import pytest

from nameko_like.rpc import RpcProxy, rpc
from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.integration

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class Target:
    name = "target"

    @rpc
    def echo(self, value):
        return value


class Caller:
    name = "caller"
    target = RpcProxy("target")

    @rpc
    def call(self, value):
        return self.target.echo(value)


def test_service_queue_is_bound_to_the_rpc_exchange(container_factory, rabbit_config, management):
    container_factory(Target, dict(rabbit_config)).start()

    queue = management.queue("rpc-target")
    assert queue is not None
    assert (queue["durable"], queue["auto_delete"], queue["exclusive"]) == (True, False, False)
    assert management.bindings("rpc-target") == [("nameko-rpc", "target.*")]
    exchange = management.exchange("nameko-rpc")
    assert (exchange["type"], exchange["durable"], exchange["auto_delete"]) == (
        "topic", True, False)


def test_service_reply_queue_name_binding_and_expiry(container_factory, rabbit_config, management):
    container_factory(Target, dict(rabbit_config)).start()
    container_factory(Caller, dict(rabbit_config)).start()

    replies = [name for name in management.queue_names() if name.startswith("rpc.reply-")]
    assert len(replies) == 1
    match = re.fullmatch(rf"rpc\.reply-caller-({UUID})", replies[0])
    assert match, replies[0]
    queue = management.queue(replies[0])
    assert queue["arguments"] == {"x-expires": 300_000}
    assert management.bindings(replies[0]) == [("nameko-rpc", match.group(1))]


def test_standalone_reply_queue_and_ttl_config(container_factory, rabbit_config, management):
    config = dict(rabbit_config, RPC_REPLY_QUEUE_TTL=60)
    container_factory(Target, config).start()
    with ClusterRpcProxy(config, timeout=10) as cluster:
        assert cluster.target.echo("x") == "x"
        replies = [name for name in management.queue_names() if name.startswith("rpc.reply-")]
        assert len(replies) == 1
        match = re.fullmatch(rf"rpc\.reply-standalone_rpc_proxy-({UUID})", replies[0])
        assert match, replies[0]
        queue = management.queue(replies[0])
        assert queue["arguments"] == {"x-expires": 60_000}
        # it goes away with the proxy's connection (Nameko's stays for the TTL)
        assert (queue["durable"], queue["auto_delete"], queue["exclusive"]) == (True, True, False)
        assert management.bindings(replies[0]) == [("nameko-rpc", match.group(1))]
    # gone as soon as the proxy stopped, not RPC_REPLY_QUEUE_TTL later
    assert management.wait_for(lambda: management.queue(replies[0]) is None, timeout=5)


def test_rpc_exchange_config_key_is_honoured(container_factory, rabbit_config, management):
    config = dict(rabbit_config, rpc_exchange="shop-rpc")
    container_factory(Target, config).start()
    container_factory(Caller, config).start()

    with ClusterRpcProxy(config, timeout=10) as cluster:
        assert cluster.caller.call("via shop-rpc") == "via shop-rpc"
    assert management.bindings("rpc-target") == [("shop-rpc", "target.*")]
    assert management.exchange("shop-rpc")["type"] == "topic"
    assert management.exchange("nameko-rpc") is None


def test_request_shape_on_the_wire_and_requests_wait_for_a_stopped_service(
        container_factory, rabbit_config, management):
    # the durable service queue outlives its consumer
    first = container_factory(Target, dict(rabbit_config))
    first.start()
    first.stop()

    context = {"language": "en-GB", "foo": "bar"}
    with ClusterRpcProxy(rabbit_config, context_data=context, timeout=10) as cluster:
        reply = cluster.target.echo.call_async(value="waiting")
        [request] = management.wait_for(lambda: management.peek("rpc-target"), timeout=5)

        properties = request["properties"]
        assert json.loads(request["payload"]) == {"args": [], "kwargs": {"value": "waiting"}}
        assert properties["content_type"] == "application/json"
        assert properties["delivery_mode"] == 2
        assert properties["correlation_id"] == reply.correlation_id
        assert re.fullmatch(UUID, properties["reply_to"])
        assert properties["headers"]["nameko.language"] == "en-GB"
        assert properties["headers"]["nameko.foo"] == "bar"
        assert request["routing_key"] == "target.echo"
        assert request["exchange"] == "nameko-rpc"

        container_factory(Target, dict(rabbit_config)).start()
        assert reply.result() == "waiting"
