"""The fault tier's checks, for ``async def`` handlers on the asyncio hub.

The service process runs ``nameko_like run`` with ``EVENTLET_HUB=asyncio``
(this test process may run on either hub). As for sync handlers: a broker
restart is survived, a message whose handler always fails is dead-lettered
once after its redeliveries, a SIGTERM lets calls in flight finish, and a
call outlasting the grace period goes back to the queue.
"""

from __future__ import annotations

import json
import time
from urllib.parse import unquote, urlsplit

import amqp
import pytest

from nameko_like.exceptions import RpcConnectionError, RpcTimeout
from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.fault

SERVICE = "fault_async"
TARGET = "async_fault_services:AsyncTarget"
ALWAYS_FAILS_QUEUE = "fault-async-always-fails"
MAX_REDELIVERIES = 2


def raw_connection(config: dict) -> amqp.Connection:
    parts = urlsplit(config["AMQP_URI"])
    connection = amqp.Connection(
        host=f"{parts.hostname}:{parts.port}", userid=unquote(parts.username),
        password=unquote(parts.password), virtual_host=unquote(parts.path[1:]),
        connect_timeout=5,
    )
    connection.connect()
    return connection


def take_all(connection: amqp.Connection, queue: str) -> list[amqp.Message]:
    """Every message ready on ``queue`` (acknowledged); [] if there is no such queue yet."""
    channel = connection.channel()
    taken = []
    try:
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            taken.append(message)
    except amqp.exceptions.NotFound:
        return taken  # the broker closed the channel
    channel.close()
    return taken


@pytest.fixture(autouse=True)
def asyncio_hub_services(monkeypatch):
    """Service processes inherit the environment: they run the asyncio hub."""
    monkeypatch.setenv("EVENTLET_HUB", "asyncio")


def test_rpc_through_a_broker_restart(fault_broker, fault_config, spawn_service, wait_ready,
                                      wait_until):
    service = spawn_service(TARGET, fault_config)
    wait_ready(fault_config, SERVICE)
    with ClusterRpcProxy(fault_config, timeout=5) as cluster:
        assert cluster[SERVICE].nap("before", 0)["id"] == "before"
    fault_broker.stop_app()
    time.sleep(2)
    fault_broker.start_app()

    def answered():
        try:
            with ClusterRpcProxy(fault_config, timeout=3) as cluster:
                return cluster[SERVICE].nap("after", 0)
        except (RpcConnectionError, RpcTimeout):
            return None

    assert wait_until(answered, timeout=30, interval=0.5,
                      message="an answer after the restart") == {
        "id": "after", "pid": service.pid}
    assert service.alive


def test_always_failing_handler_is_dead_lettered_once(fault_config, spawn_service, wait_ready,
                                                      records, wait_until):
    config = dict(fault_config, MAX_REDELIVERIES=MAX_REDELIVERIES)
    service = spawn_service(TARGET, config)
    wait_ready(config, SERVICE)
    connection = raw_connection(config)
    try:
        channel = connection.channel()
        channel.basic_publish(
            amqp.Message(json.dumps({"id": "doomed"}), content_type="application/json",
                         content_encoding="utf-8", message_id="doomed", delivery_mode=2),
            exchange="", routing_key=ALWAYS_FAILS_QUEUE)
        dead = wait_until(lambda: take_all(connection, f"{SERVICE}.dead-letter"), timeout=20,
                          message="the failing message dead-lettered")
        time.sleep(0.5)  # a second copy would come now
        dead += take_all(connection, f"{SERVICE}.dead-letter")
    finally:
        connection.close()
    assert [message.properties.get("message_id") for message in dead] == ["doomed"]
    assert f"MAX_REDELIVERIES={MAX_REDELIVERIES}" in dead[0].headers["x-dead-letter-reason"]
    assert records.ids("attempt") == ["doomed"] * (MAX_REDELIVERIES + 1)
    assert service.alive


@pytest.mark.timeout(60)
def test_sigterm_lets_async_calls_finish_and_requeues_the_one_outlasting_grace(
        fault_config, spawn_service, wait_ready, records, wait_until):
    config = dict(fault_config, SHUTDOWN_GRACE_PERIOD=1.5)
    first = spawn_service(TARGET, config)
    wait_ready(config, SERVICE)
    proxy = ClusterRpcProxy(config, timeout=30)
    try:
        cluster = proxy.start()
        quick = [cluster[SERVICE].nap.call_async(f"q{number}", 0.5) for number in range(3)]
        slow = cluster[SERVICE].nap.call_async("slow", 3.0)
        wait_until(lambda: len(records.read("start")) == 4, timeout=5, interval=0.01,
                   message="all four calls running")
        first.terminate()
        assert [reply.result()["id"] for reply in quick] == ["q0", "q1", "q2"]
        assert first.wait(timeout=15) == 0
        assert not slow.ready, "the killed call must not have been answered"
        second = spawn_service(TARGET, config)
        assert slow.result() == {"id": "slow", "pid": second.pid}
    finally:
        proxy.stop()
    starts = [(record.id, record.pid) for record in records.read("start") if record.id == "slow"]
    assert starts == [("slow", first.pid), ("slow", second.pid)]
