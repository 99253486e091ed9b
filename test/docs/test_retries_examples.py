"""docs/retries.rst: its examples, run on the real broker."""

import time

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.integration


def test_rpc_retry_example(container_factory, rabbit_config):
    from retries_payments import Gateway, Payments

    Gateway.calls = 0
    container = container_factory(Payments, rabbit_config)
    container.start()
    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        started = time.monotonic()
        assert cluster.payments.charge(7, 25) == "charged 25 for order 7"
        took = time.monotonic() - started
    assert Gateway.calls == 3
    assert 0.2 * 0.9 + 0.4 * 0.9 <= took < 2.0


def test_payload_filter_example(container_factory, rabbit_config):
    from events_filters import Fulfilment

    Fulfilment.express_orders.clear()
    Fulfilment.large_orders.clear()
    container = container_factory(Fulfilment, rabbit_config)
    container.start()
    dispatch = event_dispatcher(rabbit_config)
    for order in ({"id": 1, "shipping": "express", "total": 20},
                  {"id": 2, "shipping": "standard", "total": 1500},
                  {"id": 3, "shipping": "standard", "total": 30},
                  {"id": 4, "shipping": "express", "total": 1000}):
        dispatch("shop", "order_placed", order)
    deadline = time.monotonic() + 10
    while len(Fulfilment.express_orders) + len(Fulfilment.large_orders) < 4:
        assert time.monotonic() < deadline
        eventlet.sleep(0.02)
    eventlet.sleep(0.3)
    assert sorted(Fulfilment.express_orders) == [1, 4]
    assert sorted(Fulfilment.large_orders) == [2, 4]


def test_event_retry_example_handles_events(container_factory, rabbit_config):
    from retries_payments import Receipts

    Receipts.sent.clear()
    container = container_factory(Receipts, rabbit_config)
    container.start()
    retry = next(iter(container.entrypoints)).retry
    assert (retry.attempts, [retry.delay(n, lambda a, b: 0) for n in (1, 2, 3, 7, 8)]) == (
        8, [1.0, 2.0, 4.0, 60, 60])
    event_dispatcher(rabbit_config)("shop", "order_paid", {"id": 9})
    deadline = time.monotonic() + 10
    while not Receipts.sent:
        assert time.monotonic() < deadline
        eventlet.sleep(0.02)
    assert Receipts.sent == [9]
