"""pytest fixtures for testing HTTP and websocket services over real sockets.

``web_config`` gives a config whose ``WEB_SERVER_ADDRESS`` is a free
loopback port; ``web_session`` is a ``requests`` session that prefixes that
server's URL; ``websocket`` connects clients to its ``/ws`` endpoint.

The clients block on ordinary sockets. When the process is not
monkey-patched they run their I/O in a native thread (``eventlet.tpool``),
so the service under test keeps running meanwhile; when it is, they are
green already and run directly.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator

import pytest
import requests

from nameko_like._eventlet import eventlet
import eventlet.tpool  # noqa: E402  (after _eventlet silenced its import warning)

from nameko_like.constants import WEB_SERVER_CONFIG_KEY
from nameko_like.exceptions import RemoteError
from nameko_like.testing.utils import find_free_port


def _blocking(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking call without stalling the eventlet hub."""
    if eventlet.patcher.is_monkey_patched("socket"):
        return fn(*args, **kwargs)
    return eventlet.tpool.execute(fn, *args, **kwargs)


class WebSession(requests.Session):
    """A ``requests.Session`` whose relative URLs go to ``base_url``.

    ``session.get("/ping")`` requests ``<base_url>/ping``; absolute URLs are
    used as they are.
    """

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send a request, prefixing relative URLs with ``base_url``."""
        if url.startswith("/"):
            url = self.base_url + url
        return _blocking(super().request, method, url, *args, **kwargs)


class WebSocketClient:
    """A websocket client speaking nameko_like's websocket RPC protocol.

    Frames that are not the awaited result (pushed events, say) are kept in
    :attr:`events` in arrival order.
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        import websocket  # the websocket-client package, a test dependency

        self._ws = _blocking(websocket.create_connection, url, timeout=timeout)
        self._next_id = 0
        self.events: list[dict] = []
        connected = self.receive()
        #: The id the server gave this connection.
        self.socket_id = connected["data"]["socket_id"]

    def send(self, frame: str) -> None:
        """Send one raw text frame."""
        _blocking(self._ws.send, frame)

    def receive(self) -> dict:
        """Wait for the next frame and return it decoded.

        Raises ``ConnectionError`` once the server closed the connection.
        """
        frame = _blocking(self._ws.recv)
        if not frame:
            raise ConnectionError("the server closed the websocket")
        return json.loads(frame)

    def rpc(self, method: str, **data: Any) -> Any:
        """Call ``method``; return its result or raise ``RemoteError``."""
        self._next_id += 1
        correlation_id = self._next_id
        self.send(json.dumps({"method": method, "data": data, "correlation_id": correlation_id}))
        while True:
            frame = self.receive()
            if frame.get("type") == "result" and frame.get("correlation_id") == correlation_id:
                break
            self.events.append(frame)
        if frame["success"]:
            return frame["data"]
        raise RemoteError(frame["error"]["type"], frame["error"]["message"])

    def wait_for_event(self, event: str) -> dict:
        """Return the next pushed ``event`` frame (``data`` inside), waiting if needed."""
        for index, frame in enumerate(self.events):
            if frame.get("event") == event:
                return self.events.pop(index)
        while True:
            frame = self.receive()
            if frame.get("type") == "event" and frame.get("event") == event:
                return frame
            self.events.append(frame)

    def close(self) -> None:
        """Close the connection."""
        _blocking(self._ws.close)


def raw_http(port: int, data: bytes, timeout: float = 5.0, half_close: bool = True) -> bytes:
    """Send raw ``data`` to ``127.0.0.1:port``; return all the server answers.

    Reads until the server closes the connection (or ``timeout`` passes).
    With ``half_close`` the sending side is shut once ``data`` is sent.
    For testing how a server copes with malformed requests.
    """
    from eventlet.green import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        received = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(received)


@pytest.fixture
def web_config_port() -> int:
    """A free loopback port for the web server under test."""
    return find_free_port()


@pytest.fixture
def web_config(request: pytest.FixtureRequest, web_config_port: int) -> dict:
    """``empty_config`` (if the plugin offers it) plus ``WEB_SERVER_ADDRESS``."""
    try:
        base = request.getfixturevalue("empty_config")
    except pytest.FixtureLookupError:
        base = {}
    config = dict(base)
    config[WEB_SERVER_CONFIG_KEY] = f"127.0.0.1:{web_config_port}"
    return config


@pytest.fixture
def web_session(web_config_port: int) -> Iterator[WebSession]:
    """A requests session for the web server under test (closed at teardown)."""
    session = WebSession(f"http://127.0.0.1:{web_config_port}")
    yield session
    session.close()


@pytest.fixture
def websocket(web_config_port: int) -> Iterator[Callable[..., WebSocketClient]]:
    """``connect(path="/ws")`` returning a connected :class:`WebSocketClient`.

    Every client made is closed at teardown.
    """
    clients: list[WebSocketClient] = []

    def connect(path: str = "/ws") -> WebSocketClient:
        client = WebSocketClient(f"ws://127.0.0.1:{web_config_port}{path}")
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
