"""Payloads validated from type hints, on the real broker (and memory://)."""

from __future__ import annotations

import socket

import pytest
from contract_services import ORDERS_QUEUE, Bookings, OneMethod, Unvalidated, received
from kombu import Connection

from nameko_like.contracts import ValidationError
from nameko_like.exceptions import (
    ConfigurationError,
    IncorrectSignature,
    RemoteError,
    deserialize,
    registry,
    serialize,
)
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.services import entrypoint_waiter

JOURNEY = {"traveller": "ann", "legs": [{"origin": "LHR", "destination": "JFK"}]}


@pytest.fixture(autouse=True)
def _clear_received():
    received.clear()


@pytest.fixture
def start(container_factory, backend, web_config):
    def start(service, **config):
        # Bookings serves @http too: on a free port, not the default 8000
        # (the suite runs in several sessions at once)
        container = container_factory(service, dict(backend, **web_config, **config))
        container.start()
        return container
    return start


def test_invalid_rpc_arguments_never_reach_the_method(start, backend):
    start(Bookings)
    with ClusterRpcProxy(backend, timeout=10) as cluster:
        with pytest.raises(ValidationError) as caught:
            cluster.bookings.book({"traveller": "", "legs": [{"origin": "LHR"}]}, priority="x")
        # our callers rebuild it; it is a RemoteError too, as other callers see it
        assert isinstance(caught.value, RemoteError)
        assert caught.value.exc_type == "ValidationError"
        assert caught.value.locations == [
            "journey.traveller", "journey.legs.0.destination", "priority"]
        assert "journey.legs.0.destination: Field required" in str(caught.value)
        # field paths and messages only: the rejected values are not echoed
        assert all(set(error) == {"loc", "msg", "type"} for error in caught.value.errors)
        assert received == []
        # a wrong number of arguments is still Nameko's IncorrectSignature
        with pytest.raises(IncorrectSignature):
            cluster.bookings.book(JOURNEY, 1, 2)


def test_valid_rpc_arguments_are_converted_and_results_serialized(start, backend):
    start(Bookings)
    with ClusterRpcProxy(backend, timeout=10) as cluster:
        assert cluster.bookings.book(JOURNEY, priority="2") == {"reference": "ann-1", "legs": 1}
        assert cluster.bookings.echo_leg({"origin": "A", "destination": "B"}) == {
            "origin": "A", "destination": "B", "minutes": 60}
        assert cluster.bookings.untyped({"anything": object.__name__}) == {"anything": "object"}
    [book, echo, untyped] = received
    journey, priority = book[1], book[2]
    assert type(journey).__name__ == "Journey"
    assert type(journey.legs[0]).__name__ == "Leg"
    assert journey.legs[0].minutes == 60
    assert priority == 2
    assert type(echo[1]).__name__ == "Leg"
    assert untyped == ("untyped", {"anything": "object"})


def test_unvalidated_services_get_what_was_sent(start, backend):
    start(Unvalidated)
    with ClusterRpcProxy(backend, timeout=10) as cluster:
        assert cluster.unvalidated.book({"traveller": ""}, "x") == {
            "reference": "{'traveller': ''}", "legs": 0}
    assert received == [("book", {"traveller": ""}, "x")]


def test_the_config_switch_validates_every_annotated_service(start, backend):
    start(Unvalidated, VALIDATE_CONTRACTS=True)
    with ClusterRpcProxy(backend, timeout=10) as cluster:
        with pytest.raises(ValidationError) as caught:
            cluster.unvalidated.book({"traveller": ""})
        assert caught.value.locations == ["journey.traveller", "journey.legs"]


def test_one_method_can_opt_in(start, backend):
    start(OneMethod)
    with ClusterRpcProxy(backend, timeout=10) as cluster:
        assert cluster.one_method.checked("3") == 6
        assert cluster.one_method.unchecked("3") == "33"
        with pytest.raises(ValidationError):
            cluster.one_method.checked("three")


def test_a_caller_without_the_type_gets_a_remote_error():
    error = serialize(ValidationError("count: bad", [{"loc": "count", "msg": "bad",
                                                      "type": "int_parsing"}]))
    assert error["exc_type"] == "ValidationError"
    assert error["exc_args"] == ["count: bad", [{"loc": "count", "msg": "bad",
                                                 "type": "int_parsing"}]]
    rebuilt = deserialize(error)
    assert type(rebuilt) is ValidationError and rebuilt.locations == ["count"]
    saved = registry.pop(error["exc_path"])
    try:
        remote = deserialize(error)
    finally:
        registry[error["exc_path"]] = saved
    assert type(remote) is RemoteError
    assert remote.exc_type == "ValidationError" and remote.value == "count: bad"


def test_invalid_events_are_dead_lettered_with_the_reason(start, backend, take_messages):
    container = start(Bookings)
    dispatch = event_dispatcher(backend)
    dispatch("orders", "placed", {"order_id": "seven", "item": "tea"})
    [message] = take_messages(backend, "bookings.dead-letter", timeout=5)
    reason = message.headers["x-dead-letter-reason"]
    assert reason.startswith("ValidationError: order.order_id: Input should be a valid integer")
    assert message.decode() == {"order_id": "seven", "item": "tea"}
    assert received == []
    with entrypoint_waiter(container, "on_placed", timeout=5):
        dispatch("orders", "placed", {"order_id": "8", "item": "tea"})
    assert received == [("placed", {"order_id": 8, "item": "tea"})]


def test_invalid_consumed_messages_are_dead_lettered(start, backend, take_messages):
    container = start(Bookings)
    publish = _publisher(backend)
    publish({"item": "tea"})
    [message] = take_messages(backend, "bookings.dead-letter", timeout=5)
    assert message.headers["x-dead-letter-reason"] == (
        "ValidationError: order.order_id: Field required")
    with entrypoint_waiter(container, "on_order", timeout=5):
        publish({"order_id": 3, "item": "jam"})
    assert received == [("consumed", {"order_id": 3, "item": "jam"})]


def _publisher(config):
    def publish(payload):
        with Connection(config["AMQP_URI"]) as connection:
            producer = connection.Producer()
            producer.publish(payload, exchange=ORDERS_QUEUE.exchange, routing_key="order",
                             serializer="json", declare=[ORDERS_QUEUE])
    return publish


def test_a_type_pydantic_cannot_check_stops_the_start(container_factory, memory_config):
    from nameko_like.contracts import validated
    from nameko_like.rpc import rpc

    @validated
    class Broken:
        name = "broken"

        @rpc
        def take(self, connection: socket.socket) -> None:
            """A socket is no JSON-able type."""

    container = container_factory(Broken, memory_config)
    with pytest.raises(ConfigurationError, match=r"cannot validate the arguments of broken\.take"):
        container.start()
