"""A publisher closed while its connection is being made leaves nothing behind.

``PublishConnection.close()`` does not wait for the lock a connecting
publisher holds: the connection that publisher then finishes must be
dropped, not kept with a reader greenthread and heartbeats nobody stops
(what the fault tier's leak check saw after broker restarts under load).
The handshake is slowed down for real by a proxy in front of the broker.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.amqp.publish_connection import PublishConnection
from nameko_like.amqp.retry import PublishConnectionLost

#: How long the proxy holds a new connection before passing it on.
HANDSHAKE_DELAY = 0.6


class SlowProxy:
    """Forwards TCP connections to ``target`` after HANDSHAKE_DELAY; counts open ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = 0
        self.pool = eventlet.GreenPool()
        self.acceptor = eventlet.spawn(self._accept)

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            self.pool.spawn_n(self._serve, client)

    def _serve(self, client: Any) -> None:
        self.open += 1
        try:
            eventlet.sleep(HANDSHAKE_DELAY)
            upstream = eventlet.connect(self.target)
            pumps = [self.pool.spawn(self._pump, client, upstream),
                     self.pool.spawn(self._pump, upstream, client)]
            pumps[0].wait()
            pumps[1].kill()
            upstream.close()
        finally:
            client.close()
            self.open -= 1

    @staticmethod
    def _pump(source: Any, sink: Any) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.acceptor.kill()
        for thread in list(self.pool.coroutines_running):
            eventlet.kill(thread)
        self.listener.close()


@pytest.fixture
def slow_proxy(rabbit_config: dict[str, Any]) -> Any:
    uri = urlsplit(rabbit_config["AMQP_URI"])
    proxy = SlowProxy((uri.hostname or "localhost", uri.port or 5672))
    yield proxy
    proxy.close()


def proxied(rabbit_config: dict[str, Any], proxy: SlowProxy) -> dict[str, Any]:
    """``rabbit_config`` with its AMQP_URI going through ``proxy``."""
    uri = urlsplit(rabbit_config["AMQP_URI"])
    netloc = f"{uri.username}:{uri.password}@127.0.0.1:{proxy.port}"
    return dict(rabbit_config, AMQP_URI=urlunsplit(uri._replace(netloc=netloc)))


def wait_until_closed(proxy: SlowProxy) -> None:
    """Wait (5 s at most) until no connection is open through ``proxy``."""
    deadline = time.monotonic() + 5
    while proxy.open and time.monotonic() < deadline:
        eventlet.sleep(0.05)
    assert proxy.open == 0


def test_a_publisher_closed_while_it_connects_keeps_no_connection(
        rabbit_config: dict[str, Any], slow_proxy: SlowProxy) -> None:
    publisher = PublishConnection(proxied(rabbit_config, slow_proxy))
    connecting = eventlet.spawn(publisher.ensure_connected)
    eventlet.sleep(HANDSHAKE_DELAY / 3)
    assert slow_proxy.open == 1  # the publisher is in its handshake now
    publisher.close()

    with pytest.raises(PublishConnectionLost, match="closed"):
        connecting.wait()
    # the connection it finished making is closed, not kept
    wait_until_closed(slow_proxy)
    assert publisher.closed
    # (the plugin's leak check fails the test if a reader or heartbeats live on)


def test_through_the_proxy_an_open_publisher_connects(
        rabbit_config: dict[str, Any], slow_proxy: SlowProxy) -> None:
    # The control: the test above means something only if a publisher
    # nobody closes does connect through the proxy.
    publisher = PublishConnection(proxied(rabbit_config, slow_proxy))
    try:
        publisher.ensure_connected()
        assert slow_proxy.open == 1 and not publisher.closed
    finally:
        publisher.close()
    wait_until_closed(slow_proxy)
