"""Failover URIs on the local RabbitMQ: a dead node listed among the
alternatives (first or not) costs nothing to consumers, callers and
publishers, and no password of any alternative reaches a message."""

from urllib.parse import urlsplit, urlunsplit

import pytest

from nameko_like.amqp.connection import connect, make_connection, safe_uri
from nameko_like.rpc import rpc
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.private_broker import free_port

pytestmark = pytest.mark.integration


class Echo:
    name = "failover_echo"

    @rpc
    def echo(self, value):
        return value


def with_dead_nodes(config):
    """``config`` whose AMQP_URI lists two closed ports around the real broker."""
    real = config["AMQP_URI"]
    parts = urlsplit(real)
    taken: set[int] = set()
    dead = [urlunsplit(parts._replace(netloc=f"guest:dead-pw@127.0.0.1:{free_port(taken)}"))
            for _ in range(2)]
    return dict(config, AMQP_URI=";".join([dead[0], real, dead[1]]))


def test_every_alternative_is_tried(rabbit_config):
    config = with_dead_nodes(rabbit_config)
    for _ in range(10):  # each connection starts at a random alternative
        connection = make_connection(config, heartbeat=False)
        try:
            connect(connection)
            assert connection.connected
            assert connection.port == urlsplit(rabbit_config["AMQP_URI"]).port
        finally:
            connection.release()


def test_services_callers_and_publishers_fail_over(container_factory, rabbit_config):
    config = with_dead_nodes(rabbit_config)
    container_factory(Echo, config).start()
    with ClusterRpcProxy(config, timeout=10) as cluster:
        assert [cluster.failover_echo.echo(n) for n in range(5)] == list(range(5))
    # closed before the test's vhost is deleted: a dispatcher left to the
    # garbage collector would still be reconnecting when the leak check looks
    with event_dispatcher(config) as dispatch:
        for number in range(5):
            dispatch("failover_source", "tick", {"n": number})  # confirmed, or raises


def test_passwords_of_every_alternative_are_masked(rabbit_config):
    config = with_dead_nodes(rabbit_config)
    shown = safe_uri(config)
    assert "dead-pw" not in shown
    assert shown.count("********") == 3
