"""Typed RPC clients at run time: RpcProxy(ServiceClass) and typed(standalone proxy, ...)."""

from __future__ import annotations

import pytest
from contract_services import Bookings, Journey, Leg, received

from nameko_like.contracts import ValidationError
from nameko_like.contracts.clients import typed
from nameko_like.rpc import RpcProxy, rpc
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.services import entrypoint_hook


class Agent:
    name = "agent"
    bookings = RpcProxy(Bookings, timeout=10, validate=True)
    plain = RpcProxy(Bookings, timeout=10)

    @rpc
    def book_for(self, traveller: str) -> object:
        return self.bookings.book(Journey(traveller=traveller, legs=[Leg("A", "B")]))

    @rpc
    def leg_back(self) -> object:
        return self.bookings.echo_leg(Leg("C", "D", 5))

    @rpc
    def bad_call(self) -> object:
        return self.bookings.book({"traveller": ""})

    @rpc
    def plain_call(self) -> object:
        return self.plain.book({"traveller": "raw", "legs": []})


@pytest.fixture(autouse=True)
def _clear_received():
    received.clear()


@pytest.fixture
def config(rabbit_config, web_config):
    """Bookings has @http entrypoints too: on a free port, not the default 8000
    (the suite runs in several sessions at once)."""
    return dict(rabbit_config, **web_config)


def test_rpc_proxy_given_the_class_calls_it_by_name(container_factory, config):
    assert RpcProxy(Bookings).target_service == "bookings"
    with pytest.raises(TypeError, match="has no 'name'"):
        RpcProxy(Leg)
    containers = [container_factory(service, config) for service in (Bookings, Agent)]
    for container in containers:
        container.start()
    agent = containers[1]
    with entrypoint_hook(agent, "book_for") as book_for:
        # the model is sent as JSON, the result converted to the TypedDict
        assert book_for("ann") == {"reference": "ann-1", "legs": 1}
    with entrypoint_hook(agent, "leg_back") as leg_back:
        assert leg_back() == Leg("C", "D", 5)  # the dataclass, rebuilt from the reply
    with entrypoint_hook(agent, "bad_call") as bad_call:
        with pytest.raises(ValidationError) as caught:
            bad_call()
    assert caught.value.locations == ["journey.traveller", "journey.legs"]
    # rejected by the client: the service saw two calls, not three
    assert [entry[0] for entry in received] == ["book", "echo_leg"]
    with entrypoint_hook(agent, "plain_call") as plain_call:
        assert plain_call() == {"reference": "raw-0", "legs": 0}


def test_standalone_proxies_are_typed_and_validate(container_factory, config):
    container_factory(Bookings, config).start()
    with ClusterRpcProxy(config, timeout=10) as cluster:
        bookings = typed(cluster.bookings, Bookings, validate=True)
        assert bookings.book(Journey(traveller="bo", legs=[]), priority=1) == {
            "reference": "bo-0", "legs": 0}
        reply = bookings.echo_leg.call_async(Leg("E", "F"))  # type: ignore[attr-defined]
        assert reply.result() == Leg("E", "F", 60)
        with pytest.raises(ValidationError):
            bookings.book({"traveller": "", "legs": []})  # type: ignore[arg-type]
        assert [entry[0] for entry in received] == ["book", "echo_leg"]
        # without validate, the same proxy: arguments go as they are
        assert typed(cluster.bookings, Bookings) is not bookings
        assert typed(cluster.bookings, Bookings).untyped(7) == 7
