"""Websocket RPC (``@rpc`` in this module) and a hub to push events to clients.

Clients connect to ``/ws`` on the container's web server. The server first
sends ``{"type": "event", "event": "connected", "data": {"socket_id": ...}}``.
Each frame a client sends calls a method::

    {"method": "subscribe", "data": {"channel": "news"}, "correlation_id": 1}

and is answered, in any order, with::

    {"type": "result", "success": true, "data": <result>, "correlation_id": 1}
    {"type": "result", "success": false,
     "error": {"type": "ValueError", "message": "..."}, "correlation_id": 1}

Methods get the caller's ``socket_id`` first and the frame's ``data`` as
keyword arguments. A :class:`WebSocketHubProvider` dependency lets any
worker subscribe sockets to channels and push events
(``{"type": "event", "event": ..., "data": ...}``) to them.
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from functools import partial
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request

from nameko_like._eventlet import eventlet
import eventlet.websocket  # noqa: E402  (after _eventlet silenced its import warning)

from nameko_like.constants import (
    DEFAULT_WEB_MAX_CONTENT_LENGTH,
    WEB_MAX_CONTENT_LENGTH_CONFIG_KEY,
)
from nameko_like.exceptions import (
    ConnectionNotFound,
    MalformedRequest,
    MethodNotFound,
    UnserializableValueError,
    serialize,
)
from nameko_like.extensions import (
    DependencyProvider,
    Entrypoint,
    ProviderCollector,
    SharedExtension,
)
from nameko_like.web.server import WebServer

_log = logging.getLogger(__name__)


def event_frame(event: str, data: Any) -> str:
    """The JSON frame that pushes ``event`` with ``data`` to a client."""
    return json.dumps({"type": "event", "event": event, "data": data})


def _kill_all(threads: Any) -> None:
    """Kill every one of ``threads``, even if the caller is killed meanwhile.

    ``GreenThread.kill()`` switches to the victim and resumes the caller
    later, so the caller can itself be killed inside it; that error is
    re-raised once every thread has been killed.
    """
    interrupted = None
    for thread in list(threads):
        try:
            thread.kill()
        except BaseException as exc:  # noqa: BLE001 - re-raised once all are killed
            interrupted = interrupted or exc
    if interrupted is not None:
        raise interrupted


class Connection:
    """One connected websocket client.

    Frames to the client go through a bounded outbox drained by a writer
    greenthread, so pushing to a slow client never blocks the pusher; a
    client that lets its outbox fill up is disconnected.
    """

    #: Frames queued for one client before it is considered stuck.
    outbox_size = 1000

    def __init__(self, socket_id: str, ws: Any, context_data: dict) -> None:
        self.socket_id = socket_id
        self.ws = ws
        self.context_data = context_data
        self.subscriptions: set[str] = set()
        self.outbox: Any = eventlet.queue.LightQueue()
        self.closed = False

    def send(self, frame: str) -> None:
        """Queue ``frame`` for the client."""
        if self.closed:
            return
        if self.outbox.qsize() >= self.outbox_size:
            _log.warning("websocket %s is not reading its frames; disconnecting it", self.socket_id)
            self.close(force=True)
            return
        self.outbox.put(frame)

    def stop_reading(self) -> None:
        """End the client's frames; calls in flight still get their answers."""
        self._shutdown(socket.SHUT_RD)

    def close(self, force: bool = False) -> None:
        """Send nothing more after what is queued, and let the writer end.

        With ``force`` (a client that stopped reading, whose sends could
        block forever) the queue is dropped and the socket shut at once.
        """
        if not self.closed:
            self.closed = True
            self.outbox.put(None)
        if force:
            self._shutdown(socket.SHUT_RDWR)

    def _shutdown(self, how: int) -> None:
        try:
            self.ws.socket.shutdown(how)
        except OSError:
            pass

    def write_loop(self) -> None:
        """Send queued frames until the connection closes."""
        while True:
            frame = self.outbox.get()
            if frame is None:
                return
            try:
                self.ws.send(frame)
            except OSError:
                self.close(force=True)
                return


class WebSocketServer(ProviderCollector, SharedExtension):
    """Serves websocket clients at :attr:`path` on the container's web server.

    Shared by the container's websocket RPC entrypoints and hub providers;
    it keeps the connected sockets and their channel subscriptions.
    """

    wsgi_server = WebServer()
    #: URL of the websocket endpoint.
    path = "/ws"
    #: Seconds a closing connection waits for its calls in flight, and then
    #: for its last frames to be sent.
    close_grace = 5.0

    def __init__(self) -> None:
        super().__init__()
        self.sockets: dict[str, Connection] = {}
        self.channels: dict[str, set[str]] = {}
        self.hub = WebSocketHub(self)
        self._methods: dict[str, Any] = {}
        self._killed = False

    def setup(self) -> None:
        """Mount the endpoint on the web server."""
        self.wsgi_server.register_provider(self)

    def start(self) -> None:
        """Index the RPC entrypoints by method name."""
        self._methods = {provider.method_name: provider for provider in self._providers}

    def stop(self) -> None:
        """Once the entrypoints stopped, disconnect every client and unmount."""
        self.wait_for_providers()
        self._close_all()
        self.wsgi_server.unregister_provider(self)

    def kill(self) -> None:
        """Disconnect every client at once."""
        self._killed = True
        self._close_all()
        self.wsgi_server.unregister_provider(self)

    def _close_all(self) -> None:
        for connection in list(self.sockets.values()):
            connection.stop_reading()

    def get_url_rule(self) -> Rule:
        """The routing rule of the websocket endpoint."""
        return Rule(self.path, methods=["GET"], endpoint=self)

    def handle_request(self, request: Request) -> Any:
        """Answer the upgrade request with eventlet's websocket application."""
        context_data = self.wsgi_server.context_data_from_headers(request)
        max_frame = self.container.config.get(
            WEB_MAX_CONTENT_LENGTH_CONFIG_KEY, DEFAULT_WEB_MAX_CONTENT_LENGTH
        )
        app = eventlet.websocket.WebSocketWSGI(
            partial(self._serve, context_data), max_frame_length=max_frame
        )
        # Pre-RFC 6455 drafts are obsolete, and unsafe.
        app.support_legacy_versions = False
        return app

    def _serve(self, context_data: dict, ws: Any) -> None:
        # The per-operation HTTP timeout would end idle websockets.
        ws.socket.settimeout(None)
        connection = Connection(str(uuid.uuid4()), ws, context_data)
        self.sockets[connection.socket_id] = connection
        writer = eventlet.spawn(connection.write_loop)
        connection.send(event_frame("connected", {"socket_id": connection.socket_id}))
        # A client may have several calls in flight, but no more than the
        # service has workers: past that, its frames wait unread.
        calls = eventlet.GreenPool(self.container.max_workers)
        graceful = False
        try:
            while not connection.closed:
                frame = ws.wait()
                if frame is None:
                    break
                calls.spawn(self._handle_frame, connection, frame)
            graceful = True
        except Exception as exc:  # a protocol error from the client ends its connection
            graceful = True
            _log.debug("websocket %s ended: %r", connection.socket_id, exc)
        finally:
            self._forget(connection)
            self._wind_down(connection, calls, writer, graceful and not self._killed)

    def _wind_down(self, connection: Connection, calls: Any, writer: Any, graceful: bool) -> None:
        # Gracefully, calls in flight answer and queued frames go out, for a
        # while; killed (with the server), nothing is waited for. Either way,
        # and even if this greenthread is killed meanwhile, nothing is left
        # running.
        try:
            if graceful:
                with eventlet.Timeout(self.close_grace, False):
                    calls.waitall()
        finally:
            connection.close()  # does not yield, so cannot be interrupted
            try:
                # Killing yields to the hub, and the web server kills this
                # greenthread when it is killed too: _kill_all() kills every
                # call even then (an interrupted loop left them, and the
                # writer, running).
                _kill_all(calls.coroutines_running)
                if graceful:
                    with eventlet.Timeout(self.close_grace, False):
                        writer.wait()
            finally:
                writer.kill()

    def _forget(self, connection: Connection) -> None:
        self.sockets.pop(connection.socket_id, None)
        for channel in connection.subscriptions:
            members = self.channels.get(channel)
            if members is not None:
                members.discard(connection.socket_id)
                if not members:
                    del self.channels[channel]

    def _handle_frame(self, connection: Connection, frame: Any) -> None:
        correlation_id = None
        try:
            method, data, correlation_id = self._parse_frame(frame)
            provider = self._methods.get(method)
            if provider is None:
                raise MethodNotFound(method)
            result = provider.handle_message(connection.socket_id, data, connection.context_data)
            try:
                reply = json.dumps(
                    {"type": "result", "success": True, "data": result,
                     "correlation_id": correlation_id}
                )
            except (TypeError, ValueError):
                raise UnserializableValueError(result) from None
        except Exception as exc:
            error = serialize(exc)
            reply = json.dumps(
                {"type": "result", "success": False,
                 "error": {"type": error["exc_type"], "message": error["value"]},
                 "correlation_id": correlation_id},
                default=str,
            )
        connection.send(reply)

    @staticmethod
    def _parse_frame(frame: Any) -> tuple[str, dict, Any]:
        try:
            request = json.loads(frame)
        except ValueError:
            raise MalformedRequest("a websocket frame must be a JSON object") from None
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            raise MalformedRequest('a websocket frame must be {"method": ..., "data": {...}}')
        data = request.get("data") or {}
        if not isinstance(data, dict):
            raise MalformedRequest('"data" must be an object of keyword arguments')
        return request["method"], data, request.get("correlation_id")


class WebSocketHub:
    """Pushes events to connected clients and manages their subscriptions.

    Workers get it through :class:`WebSocketHubProvider`.
    """

    def __init__(self, server: WebSocketServer) -> None:
        self._server = server

    def _connection(self, socket_id: str) -> Connection:
        connection = self._server.sockets.get(socket_id)
        if connection is None:
            raise ConnectionNotFound(socket_id)
        return connection

    def get_subscriptions(self, socket_id: str) -> list[str]:
        """The channels ``socket_id`` is subscribed to, sorted."""
        return sorted(self._connection(socket_id).subscriptions)

    def subscribe(self, socket_id: str, channel: str) -> None:
        """Subscribe ``socket_id`` to ``channel``."""
        self._connection(socket_id).subscriptions.add(channel)
        self._server.channels.setdefault(channel, set()).add(socket_id)

    def unsubscribe(self, socket_id: str, channel: str) -> None:
        """Unsubscribe ``socket_id`` from ``channel`` (no error if it wasn't)."""
        self._connection(socket_id).subscriptions.discard(channel)
        members = self._server.channels.get(channel)
        if members is not None:
            members.discard(socket_id)
            if not members:
                del self._server.channels[channel]

    def broadcast(self, channel: str, event: str, data: Any) -> None:
        """Push ``event`` with ``data`` to every socket subscribed to ``channel``."""
        frame = event_frame(event, data)
        for socket_id in list(self._server.channels.get(channel, ())):
            connection = self._server.sockets.get(socket_id)
            if connection is not None:
                connection.send(frame)

    def unicast(self, socket_id: str, event: str, data: Any) -> bool:
        """Push ``event`` with ``data`` to one socket; ``ConnectionNotFound`` if it is gone."""
        self._connection(socket_id).send(event_frame(event, data))
        return True


class WebSocketHubProvider(DependencyProvider):
    """Gives workers the :class:`WebSocketHub` of the container's websocket server."""

    server = WebSocketServer()

    def get_dependency(self, worker_ctx: Any) -> WebSocketHub:
        """The hub."""
        return self.server.hub


class WebSocketRpc(Entrypoint):
    """Entrypoint: a service method websocket clients call by name."""

    server = WebSocketServer()

    def setup(self) -> None:
        """Register with the websocket server."""
        self.server.register_provider(self)

    def stop(self) -> None:
        """Stop taking calls."""
        self.server.unregister_provider(self)

    def kill(self) -> None:
        """Stop taking calls at once."""
        self.server.unregister_provider(self)

    def handle_message(self, socket_id: str, data: dict, context_data: dict) -> Any:
        """Run a worker with ``data`` as keyword arguments; return its result."""
        done = eventlet.event.Event()
        self.container.spawn_worker(
            self, (socket_id,), data,
            context_data=context_data,
            handle_result=partial(self.handle_result, done),
        )
        return done.wait()

    def handle_result(self, done: Any, worker_ctx: Any, result: Any, exc_info: Any) -> tuple:
        """Hand the outcome to the waiting frame handler (runs in the worker)."""
        done.send(result, exc_info)
        return result, exc_info


rpc = WebSocketRpc.decorator
