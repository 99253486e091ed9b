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
import logging
import random
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import pytest
import requests

from nameko_like._eventlet import eventlet
import eventlet.tpool  # after _eventlet silenced its import warning

from nameko_like.constants import WEB_SERVER_CONFIG_KEY
from nameko_like.exceptions import deserialize
from nameko_like.testing.utils import find_free_port

if TYPE_CHECKING:
    from websocket import WebSocket

_log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: An ``eventlet.queue.Queue`` (eventlet ships no type information).
_Queue = Any


def _blocking(fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
    """Run a blocking call without stalling the eventlet hub."""
    if eventlet.patcher.is_monkey_patched("socket"):
        return fn(*args, **kwargs)
    result: _R = eventlet.tpool.execute(fn, *args, **kwargs)
    return result


class WebSession(requests.Session):
    """A ``requests.Session`` whose relative URLs go to ``base_url``.

    ``session.get("/ping")`` requests ``<base_url>/ping``; absolute URLs are
    used as they are.
    """

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send a request, prefixing relative URLs with ``base_url``."""
        if isinstance(url, bytes):
            url = url.decode("utf-8")  # as requests reads a bytes URL
        if url.startswith("/"):
            url = self.base_url + url
        return _blocking(super().request, method, url, *args, **kwargs)


#: Marks the end of a client's frames in its queues.
_CLOSED = object()


class WebSocketClient:
    """A websocket client of nameko_like's (and Nameko's) websocket RPC.

    It behaves as the client of Nameko's ``websocket`` fixture: a reader
    greenthread sorts the server's frames as they arrive, pushed events
    into one queue per event type (:meth:`wait_for_event`,
    :meth:`get_event_queue`, the ``connected`` greeting included), results
    to the :meth:`rpc` call awaiting them. Frames nobody awaits (results of
    frames sent with :meth:`send`) are kept for :meth:`receive`.

    Waits give up after ``timeout`` seconds with ``TimeoutError`` rather
    than hang a test, and end with ``ConnectionError`` once the server
    closed the connection.
    """

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        import websocket  # the websocket-client package, a test dependency

        self.timeout = timeout
        self._ws: WebSocket = _blocking(websocket.create_connection, url, timeout=timeout)
        # The reader waits for frames indefinitely; waits time out instead.
        self._ws.settimeout(None)
        self._event_queues: dict[str, _Queue] = {}
        # An eventlet Event per rpc() awaiting its result, by correlation id.
        self._results: dict[str, Any] = {}
        self._unclaimed: _Queue = eventlet.queue.Queue()
        self.closed = False
        self._reader = eventlet.spawn(self._read_loop)
        event, data = self.wait_for_event("connected")
        # Left in its queue, as Nameko's client leaves it.
        self.get_event_queue(event).put((event, data))
        #: The id the server gave this connection (from its greeting).
        self.socket_id: str = data["socket_id"]

    def _read_loop(self) -> None:
        try:
            while True:
                frame = _blocking(self._ws.recv)
                if not frame:
                    break
                self._dispatch(json.loads(frame))
        except Exception as exc:  # noqa: BLE001 - any failure ends the frames alike
            _log.debug("websocket client stopped reading: %r", exc)
        finally:
            self.closed = True
            for queue in [self._unclaimed, *self._event_queues.values()]:
                queue.put(_CLOSED)
            for waiter in self._results.values():
                waiter.send(_CLOSED)

    def _dispatch(self, frame: dict[str, Any]) -> None:
        if frame.get("type") == "event":
            self.get_event_queue(frame["event"]).put((frame["event"], frame.get("data")))
            return
        correlation_id = frame.get("correlation_id")
        # Ids are the str uuids rpc() sent; anything else awaits no one.
        waiter = self._results.pop(correlation_id, None) \
            if frame.get("type") == "result" and isinstance(correlation_id, str) else None
        if waiter is not None:
            waiter.send(frame)
        else:
            self._unclaimed.put(frame)

    def _take(self, queue: _Queue, awaited: str) -> Any:
        if self.closed and queue.empty():
            raise ConnectionError("the server closed the websocket")
        try:
            item = queue.get(timeout=self.timeout)
        except eventlet.queue.Empty:
            raise TimeoutError(f"no {awaited} within {self.timeout}s") from None
        if item is _CLOSED:
            queue.put(_CLOSED)  # for the next waiter
            raise ConnectionError("the server closed the websocket")
        return item

    def get_event_queue(self, event_type: str) -> _Queue:
        """The queue of ``(event_type, data)`` pushes not yet waited for."""
        queue = self._event_queues.get(event_type)
        if queue is None:
            queue = self._event_queues[event_type] = eventlet.queue.Queue()
            if self.closed:
                queue.put(_CLOSED)
        return queue

    def wait_for_event(self, event_type: str) -> tuple[str, Any]:
        """The next ``event_type`` push, as ``(event_type, data)``; waits if needed."""
        event: tuple[str, Any] = self._take(self.get_event_queue(event_type),
                                            f"{event_type!r} event")
        return event

    def rpc(self, _method: str, **data: Any) -> Any:
        """Call ``_method`` with ``data``; return its result or raise its error.

        The error is rebuilt as RPC errors are (``MethodNotFound``,
        ``IncorrectSignature``, ... as themselves, anything else as
        ``RemoteError``).
        """
        correlation_id = str(uuid.uuid4())
        waiter = eventlet.event.Event()
        self._results[correlation_id] = waiter
        frame = {"method": _method, "data": data, "correlation_id": correlation_id}
        self.send(json.dumps(frame))
        try:
            with eventlet.Timeout(self.timeout, TimeoutError(
                    f"no answer to {_method!r} within {self.timeout}s")):
                reply = waiter.wait()
        finally:
            self._results.pop(correlation_id, None)
        if reply is _CLOSED:
            raise ConnectionError("the server closed the websocket")
        if reply["success"]:
            return reply["data"]
        raise deserialize(reply["error"])

    def send(self, frame: str) -> None:
        """Send one raw text frame."""
        _blocking(self._ws.send, frame)

    def receive(self) -> dict[str, Any]:
        """The next frame nobody awaits (a result of :meth:`send`), decoded.

        Raises ``ConnectionError`` once the server closed the connection.
        """
        frame: dict[str, Any] = self._take(self._unclaimed, "frame")
        return frame

    def close(self) -> None:
        """Close the connection and end the reader."""
        if not self.closed:
            sock = self._ws.sock
            try:
                _blocking(self._ws.send_close)
            except Exception as exc:  # noqa: BLE001 - closing anyway
                _log.debug("websocket client could not send its close frame: %r", exc)
            if sock is not None:
                try:
                    # Wakes the reader, even one blocked in a native thread.
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._reader.wait()
        self._ws.shutdown()  # type: ignore[no-untyped-call]  # unannotated in websocket-client


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


#: Where the kernel's ephemeral ports start when /proc does not say (Linux's default).
EPHEMERAL_LOW_DEFAULT = 32768
#: The lowest port ``web_config_port`` picks.
LISTEN_PORT_LOW = 10000


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return EPHEMERAL_LOW_DEFAULT


def unassigned_port(host: str = "127.0.0.1") -> int:
    """A free port on ``host`` below the kernel's ephemeral range.

    A port the kernel hands out for ``bind(0)`` comes from the range it also
    gives outgoing connections, so between the test picking it and the
    server binding it, any process's new connection (a broker client, a
    test session running beside this one) may take it. Below that range
    only another explicit pick can. Falls back to :func:`find_free_port`.
    """
    low = _ephemeral_low()
    for _ in range(100):
        port = random.randrange(LISTEN_PORT_LOW, max(low, LISTEN_PORT_LOW + 1))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        return port
    return find_free_port(host)


@pytest.fixture
def web_config_port() -> int:
    """A free loopback port for the web server under test (see :func:`unassigned_port`)."""
    return unassigned_port()


@pytest.fixture
def web_config(request: pytest.FixtureRequest, web_config_port: int) -> dict[str, Any]:
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

    As with Nameko's fixture: ``client.wait_for_event("connected")`` gives
    ``("connected", {"socket_id": ...})``, ``client.rpc(method, **data)``
    calls and raises the remote error.

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
