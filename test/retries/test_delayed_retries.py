"""Delayed retries on the real broker: timing, dead-lettering, RPC, the topology."""

from __future__ import annotations

import time

import pytest
from kombu import Connection, Exchange, Queue

from nameko_like._eventlet import eventlet
from nameko_like.events import event_handler
from nameko_like.exceptions import RemoteError
from nameko_like.messaging import consume
from nameko_like.retries import ATTEMPT_HEADER, ATTEMPTS_HEADER, LAST_ERROR_HEADER, Retry
from nameko_like.rpc import rpc
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.integration

#: How much later than due an attempt may run (broker expiry + delivery).
LATE = 0.35

FLAKY_QUEUE = Queue("flaky-jobs", exchange=Exchange("jobs", type="direct", durable=True),
                    routing_key="flaky", durable=True)
SLOW_QUEUE = Queue("slow-jobs", durable=True)
FAST_QUEUE = Queue("fast-jobs", durable=True)

#: (what, monotonic time) of every attempt, by test
attempts: list[tuple[object, float]] = []
#: how many attempts fail before one succeeds, by payload key
fail_first: dict[object, int] = {}


def _attempt(key: object) -> None:
    attempts.append((key, time.monotonic()))
    seen = sum(1 for done, _ in attempts if done == key)
    if seen <= fail_first.get(key, 10**6):
        raise OSError(f"attempt {seen} at {key} failed")


class Jobs:
    name = "jobs"

    @consume(FLAKY_QUEUE, retry=Retry(on=OSError, attempts=3, backoff=0.5, multiplier=2,
                                      jitter=0))
    def flaky(self, body):
        _attempt(body)

    @consume(SLOW_QUEUE, retry=Retry(on=OSError, attempts=2, backoff=3.0, jitter=0))
    def slow(self, body):
        _attempt(body)

    @consume(FAST_QUEUE, retry=Retry(on=OSError, attempts=2, backoff=0.3, jitter=0))
    def fast(self, body):
        _attempt(body)


class Orders:
    name = "orders"

    @rpc(retry=Retry(on=OSError, attempts=3, backoff=0.2, jitter=0))
    def place(self, key):
        _attempt(key)
        return f"placed {key}"

    @rpc(retry=Retry(on=OSError, attempts=3, backoff=0.2, jitter=0))
    def refuse(self, key):
        raise ValueError(f"{key} is not for sale")  # not retried: not an OSError


class Shipping:
    name = "shipping"

    @event_handler("orders", "placed", retry=Retry(on=OSError, attempts=4, backoff=0.2,
                                                   jitter=0.5))
    def ship(self, payload):
        _attempt(payload["id"])


@pytest.fixture(autouse=True)
def _clean():
    attempts.clear()
    fail_first.clear()
    yield
    attempts.clear()
    fail_first.clear()


def _publish(config, queue, body, **kwargs):
    with Connection(config["AMQP_URI"]) as connection:
        connection.Producer().publish(body, exchange=queue.exchange, routing_key=queue.routing_key
                                      or queue.name, declare=[queue], serializer="json",
                                      **kwargs)


def _wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"not met within {timeout}s; attempts: {attempts}", pytrace=False)
        eventlet.sleep(0.02)


def _times(key):
    return [at for done, at in attempts if done == key]


def test_three_attempts_back_off_then_dead_letter_with_headers(
        container_factory, rabbit_config, take_messages, management):
    container = container_factory(Jobs, rabbit_config)
    container.start()
    _publish(rabbit_config, FLAKY_QUEUE, "job-1", headers={"nameko.call_id_stack": ["x.y.1"]})
    [dead] = take_messages(rabbit_config, "jobs.dead-letter", timeout=10)
    first, second, third = _times("job-1")
    # back-off 0.5 s, then 1.0 s (jitter off); two significant figures exact here
    assert 0.5 <= second - first <= 0.5 + LATE, second - first
    assert 1.0 <= third - second <= 1.0 + LATE, third - second
    assert dead.decode() == "job-1"
    assert dead.headers[ATTEMPTS_HEADER] == 3
    assert dead.headers[LAST_ERROR_HEADER] == "OSError: attempt 3 at job-1 failed"
    assert dead.headers["x-dead-letter-reason"] == (
        "failed 3 attempt(s), the last with OSError: attempt 3 at job-1 failed")
    # where it came from, for a replay, and the context it carried
    assert dead.headers["x-original-exchange"] == "jobs"
    assert dead.headers["x-original-routing-key"] == "flaky"
    assert dead.headers["nameko.call_id_stack"] == ["x.y.1"]
    assert "x-death" not in dead.headers
    eventlet.sleep(0.5)
    assert len(_times("job-1")) == 3  # nothing ran after the dead-letter
    # the topology: one headers exchange, one queue per delay, all emptied
    exchange = management.exchange("jobs.retry")
    assert (exchange["type"], exchange["durable"]) == ("headers", True)
    for name, ttl in (("jobs.retry.500ms", 500), ("jobs.retry.1000ms", 1000)):
        queue = management.queue(name)
        assert queue["durable"] is True
        assert queue["arguments"] == {"x-message-ttl": ttl, "x-dead-letter-exchange": ""}


def test_success_on_a_later_attempt_is_acked(container_factory, rabbit_config, take_messages):
    fail_first["job-2"] = 1
    container = container_factory(Jobs, rabbit_config)
    container.start()
    _publish(rabbit_config, FLAKY_QUEUE, "job-2")
    _wait_for(lambda: len(_times("job-2")) == 2, 5)
    eventlet.sleep(1.0)  # past the next delay: no third attempt
    assert len(_times("job-2")) == 2
    assert take_messages(rabbit_config, "jobs.dead-letter", timeout=0.5) == []


def test_a_long_delay_does_not_hold_a_short_one_back(container_factory, rabbit_config):
    container = container_factory(Jobs, rabbit_config)
    container.start()
    _publish(rabbit_config, SLOW_QUEUE, "slow")
    _wait_for(lambda: _times("slow"), 5)
    _publish(rabbit_config, FAST_QUEUE, "fast")
    _wait_for(lambda: len(_times("fast")) == 2, 5)
    # the fast job's retry came back after 0.3 s, while the slow one still waits
    fast_first, fast_second = _times("fast")
    assert 0.3 <= fast_second - fast_first <= 0.3 + LATE
    assert len(_times("slow")) == 1
    _wait_for(lambda: len(_times("slow")) == 2, 6)
    slow_first, slow_second = _times("slow")
    assert 3.0 <= slow_second - slow_first <= 3.0 + LATE


def test_rpc_caller_gets_the_result_after_two_failures(container_factory, rabbit_config):
    fail_first["order-1"] = 2
    container = container_factory(Orders, rabbit_config)
    container.start()
    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        started = time.monotonic()
        assert cluster.orders.place("order-1") == "placed order-1"
        took = time.monotonic() - started
    # 0.2 s then 0.4 s of back-off; one reply only
    assert len(_times("order-1")) == 3
    assert 0.6 <= took <= 0.6 + 2 * LATE + 0.5


def test_rpc_caller_gets_the_last_error_and_the_request_is_dead_lettered(
        container_factory, rabbit_config, take_messages):
    container = container_factory(Orders, rabbit_config)
    container.start()
    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        with pytest.raises(RemoteError) as raised:
            cluster.orders.place("order-2")
    assert raised.value.exc_type == "OSError"
    assert raised.value.value == "attempt 3 at order-2 failed"
    [dead] = take_messages(rabbit_config, "orders.dead-letter", timeout=10)
    assert dead.headers[ATTEMPTS_HEADER] == 3
    assert dead.headers[LAST_ERROR_HEADER] == "OSError: attempt 3 at order-2 failed"
    assert dead.headers["x-original-routing-key"] == "orders.place"
    # the request kept its reply address through the delays
    assert dead.properties["reply_to"]
    assert dead.properties["correlation_id"]


def test_rpc_errors_retry_does_not_cover_are_answered_at_once(container_factory,
                                                             rabbit_config, take_messages):
    container = container_factory(Orders, rabbit_config)
    container.start()
    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        started = time.monotonic()
        with pytest.raises(RemoteError) as raised:
            cluster.orders.refuse("teapot")
        assert time.monotonic() - started < 0.5
    assert raised.value.exc_type == "ValueError"
    assert take_messages(rabbit_config, "orders.dead-letter", timeout=0.5) == []


def test_event_handler_retries_with_jitter(container_factory, rabbit_config):
    fail_first["ev-1"] = 2
    container = container_factory(Shipping, rabbit_config)
    container.start()
    dispatch = event_dispatcher(rabbit_config)
    dispatch("orders", "placed", {"id": "ev-1"})
    _wait_for(lambda: len(_times("ev-1")) == 3, 5)
    first, second, third = _times("ev-1")
    # 0.2 s and 0.4 s, each +-50% of itself
    assert 0.1 <= second - first <= 0.3 + LATE
    assert 0.2 <= third - second <= 0.6 + LATE
    eventlet.sleep(1.0)
    assert len(_times("ev-1")) == 3


def test_attempt_header_counts_attempts(container_factory, rabbit_config, management):
    """A waiting message carries how many attempts failed (it survives restarts)."""
    container = container_factory(Jobs, rabbit_config)
    container.start()
    _publish(rabbit_config, SLOW_QUEUE, "counted")
    _wait_for(lambda: _times("counted"), 5)
    # the copy is published once the worker finished: its queue may not exist yet
    [waiting] = management.wait_for(lambda: management.queue("jobs.retry.3000ms") is not None
                                    and management.peek("jobs.retry.3000ms"), timeout=2)
    assert waiting["properties"]["headers"][ATTEMPT_HEADER] == 1
    assert waiting["properties"]["delivery_mode"] == 2
