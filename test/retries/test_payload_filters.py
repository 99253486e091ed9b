"""``@event_handler(..., payload_filter=...)`` on the real broker, and its bad values."""

from __future__ import annotations

import time

import pytest

from nameko_like import instrumentation
from nameko_like._eventlet import eventlet
from nameko_like.events import event_handler
from nameko_like.payload_filters import FieldsFilter, PayloadFilterError, as_predicate
from nameko_like.standalone.events import event_dispatcher

handled: list[tuple[str, object]] = []


def _big(order):
    return order["total"] > 100


def _broken(order):
    return order["missing"]


class Fulfilment:
    name = "fulfilment"

    @event_handler("shop", "order_placed", payload_filter={"country": "SE", "express": True})
    def express_se(self, order):
        handled.append(("express_se", order["id"]))

    @event_handler("shop", "order_placed", payload_filter=_big)
    def big(self, order):
        handled.append(("big", order["id"]))

    @event_handler("shop", "order_placed")
    def every(self, order):
        handled.append(("every", order["id"]))

    @event_handler("shop", "order_placed", payload_filter=_broken)
    def broken(self, order):
        handled.append(("broken", order["id"]))


class Counting(instrumentation.Observer):
    def __init__(self):
        self.filtered: list[tuple[str, str]] = []

    def event_filtered(self, service_name, method_name):
        self.filtered.append((service_name, method_name))


@pytest.fixture
def counting():
    observer = Counting()
    instrumentation.register(observer)
    yield observer
    instrumentation.unregister(observer)


ORDERS = [
    {"id": 1, "country": "SE", "express": True, "total": 50},
    {"id": 2, "country": "SE", "express": False, "total": 500},
    {"id": 3, "country": "NO", "express": True, "total": 150},
    {"id": 4, "country": "SE", "express": True, "total": 101},
]


@pytest.mark.integration
def test_filtered_events_are_acked_counted_and_never_handled(
        container_factory, rabbit_config, counting, management, take_messages):
    handled.clear()
    container = container_factory(Fulfilment, rabbit_config)
    container.start()
    dispatch = event_dispatcher(rabbit_config)
    for order in ORDERS:
        dispatch("shop", "order_placed", order)
    deadline = time.monotonic() + 10
    while len(handled) < 9 or len(counting.filtered) < 3:
        assert time.monotonic() < deadline, (handled, counting.filtered)
        eventlet.sleep(0.02)
    eventlet.sleep(0.3)
    assert sorted(handled) == [("big", 2), ("big", 3), ("big", 4),
                               ("every", 1), ("every", 2), ("every", 3), ("every", 4),
                               ("express_se", 1), ("express_se", 4)]
    assert sorted(counting.filtered) == [("fulfilment", "big"),
                                         ("fulfilment", "express_se"),
                                         ("fulfilment", "express_se")]
    # a filter that raises dead-letters its events, naming why
    dead = take_messages(rabbit_config, "fulfilment.dead-letter", count=4, timeout=10)
    assert sorted(message.decode()["id"] for message in dead) == [1, 2, 3, 4]
    assert dead[0].headers["x-dead-letter-reason"] == "payload_filter raised KeyError: 'missing'"
    # every event settled: none waits on the filtered handlers' queues
    for method in ("express_se", "big"):
        name = f"evt-shop-order_placed--fulfilment.{method}"
        assert management.peek(name) == []


def test_fields_filter():
    accepts = as_predicate({"country": "SE", "express": True})
    assert isinstance(accepts, FieldsFilter)
    assert accepts({"country": "SE", "express": True, "total": 1})
    assert not accepts({"country": "SE"})  # a missing field is not a match
    assert not accepts({"country": "SE", "express": 1.5})
    assert not accepts(["country", "SE"])  # not a dict at all
    assert as_predicate({"express": None})({"express": None})
    assert not as_predicate({"express": None})({})


def test_bad_filters_are_refused_naming_the_fix():
    with pytest.raises(PayloadFilterError, match=r"a predicate taking the payload"):
        event_handler("shop", "order_placed", payload_filter="country == 'SE'")(_big)
    with pytest.raises(PayloadFilterError, match=r"string keys"):
        event_handler("shop", "order_placed", payload_filter={1: "SE"})(_big)
