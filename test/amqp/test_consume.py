"""The container's consumer connection against RabbitMQ: prefetch beyond the
worker pool, heartbeats while every worker is busy, and acks that wait for
the worker."""

import logging
import time

import pytest
from kombu import Connection, Exchange, Queue

from nameko_like._eventlet import eventlet
from nameko_like.amqp import Publisher
from nameko_like.messaging import consume
from nameko_like.rpc import rpc
from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.integration


def ready_count(config, queue_name):
    """Messages ready on a queue, read live from the broker (not the statistics)."""
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.default_channel
        _name, count, _consumers = channel.queue_declare(queue_name, passive=True)
    return count


def amqp_warnings(caplog):
    return [record.getMessage() for record in caplog.records
            if record.levelno >= logging.WARNING and record.name.startswith("nameko_like")]


class Busy:
    name = "busy"
    executions = []

    @rpc
    def block(self, seconds):
        eventlet.sleep(seconds)
        return "unblocked"

    @rpc
    def quick(self, value):
        Busy.executions.append(value)
        return value


def test_prefetch_beyond_workers_neither_deadlocks_nor_misses_heartbeats(
        container_factory, rabbit_config, caplog):
    # Both workers block for 3 s with 48 more requests prefetched: for 3 s
    # nothing is acked, so only a reader that keeps reading the socket
    # answers the broker's heartbeats. At HEARTBEAT 1 the broker drops a
    # connection silent for ~2 s, and each quick call would then run twice
    # (redelivered) or the calls would hang.
    Busy.executions = []
    config = dict(rabbit_config, max_workers=2, PREFETCH_COUNT=50, HEARTBEAT=1)
    container_factory(Busy, config).start()

    with caplog.at_level(logging.WARNING), ClusterRpcProxy(rabbit_config, timeout=15) as cluster:
        started = time.monotonic()
        blocking = [cluster.busy.block.call_async(3) for _ in range(2)]
        eventlet.sleep(0.1)  # the two blockers are delivered first
        quick = [cluster.busy.quick.call_async(i) for i in range(48)]
        assert [reply.result() for reply in quick] == list(range(48))
        assert [reply.result() for reply in blocking] == ["unblocked"] * 2
        elapsed = time.monotonic() - started

    assert sorted(Busy.executions) == list(range(48))  # each exactly once
    assert 2.9 < elapsed < 5, elapsed
    assert amqp_warnings(caplog) == []


class Gate:
    name = "gate"
    started = None
    release = None

    @rpc
    def wait(self):
        if not Gate.started.ready():
            Gate.started.send(True)
        Gate.release.wait()
        return "released"


@pytest.fixture
def gate():
    Gate.started = eventlet.event.Event()
    Gate.release = eventlet.event.Event()
    yield Gate
    if not Gate.release.ready():
        Gate.release.send(True)


def test_request_is_acked_only_once_the_worker_finished(
        container_factory, rabbit_config, management, gate):
    container = container_factory(Gate, dict(rabbit_config))
    container.start()

    with ClusterRpcProxy(rabbit_config, timeout=15) as cluster:
        reply = cluster.gate.wait.call_async()
        gate.started.wait()
        # delivered, not ready, and (as the statistics catch up) unacked
        assert ready_count(rabbit_config, "rpc-gate") == 0
        management.wait_for(
            lambda: management.queue("rpc-gate").get("messages_unacknowledged") == 1)

        gate.release.send(True)
        assert reply.result() == "released"
    container.stop()
    # a message still unacked would go back to the queue on stop
    eventlet.sleep(0.3)
    assert ready_count(rabbit_config, "rpc-gate") == 0


def test_request_whose_worker_dies_goes_back_to_the_queue(
        container_factory, rabbit_config, management, gate):
    container = container_factory(Gate, dict(rabbit_config))
    container.start()

    with ClusterRpcProxy(rabbit_config, timeout=15) as cluster:
        reply = cluster.gate.wait.call_async()
        gate.started.wait()
        container.kill()
        # not acked while the worker ran, so the broker takes it back (once
        # it has noticed the connection close)
        management.wait_for(lambda: ready_count(rabbit_config, "rpc-gate") == 1, timeout=5)

        gate.release.send(True)
        container_factory(Gate, dict(rabbit_config)).start()
        assert reply.result() == "released"


class Drain:
    name = "drain"
    handled = []

    @consume(Queue("drain-work", exchange=Exchange("drain-x", type="direct"), routing_key="work"))
    def work(self, value):
        eventlet.sleep(0.05)
        Drain.handled.append(value)


def test_graceful_stop_returns_the_prefetched_backlog(container_factory, rabbit_config, management):
    Drain.handled = []
    config = dict(rabbit_config, max_workers=1, PREFETCH_COUNT=20)
    first = container_factory(Drain, config)
    first.start()
    publisher = Publisher(config=rabbit_config)
    for value in range(10):
        publisher.publish(value, exchange="drain-x", routing_key="work")

    deadline = time.monotonic() + 5
    while not Drain.handled and time.monotonic() < deadline:
        eventlet.sleep(0.01)
    stopping = time.monotonic()
    first.stop()
    # promptly: a prefetched backlog must not hold the stop for the grace period
    assert time.monotonic() - stopping < 2
    handled_first = list(Drain.handled)
    assert 0 < len(handled_first) < 10
    management.wait_for(
        lambda: ready_count(rabbit_config, "drain-work") == 10 - len(handled_first), timeout=5)

    container_factory(Drain, config).start()
    deadline = time.monotonic() + 5
    while len(Drain.handled) < 10 and time.monotonic() < deadline:
        eventlet.sleep(0.01)
    eventlet.sleep(0.2)  # a duplicate would show up now
    assert sorted(Drain.handled) == list(range(10))
