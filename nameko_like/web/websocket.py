"""Websocket RPC (``@rpc`` in this module) and a hub to push events to clients.

Clients connect to ``/ws`` on the container's web server. The server first
sends ``{"type": "event", "event": "connected", "data": {"socket_id": ...}}``.
Each frame a client sends calls a method::

    {"method": "subscribe", "data": {"channel": "news"}, "correlation_id": 1}

and is answered, in any order, with::

    {"type": "result", "success": true, "data": <result>, "correlation_id": 1}
    {"type": "result", "success": false, "correlation_id": 1,
     "error": {"exc_type": "ValueError", "exc_path": "builtins.ValueError",
               "exc_args": [...], "value": "..."}}

(the error as in RPC replies, so ``nameko_like.exceptions.deserialize``
rebuilds it).

Methods get the caller's ``socket_id`` first and the frame's ``data`` as
keyword arguments. A :class:`WebSocketHubProvider` dependency lets any
worker subscribe sockets to channels and push events
(``{"type": "event", "event": ..., "data": ...}``) to them.
"""

from __future__ import annotations

import json
import logging
import uuid
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response
from werkzeug.routing import Rule
from werkzeug.wrappers import Request

from nameko_like._eventlet import eventlet
import eventlet.websocket  # after _eventlet silenced its import warning

from nameko_like.constants import (
    DEFAULT_WEB_MAX_CONTENT_LENGTH,
    WEB_MAX_CONTENT_LENGTH_CONFIG_KEY,
    WEB_MAX_WEBSOCKET_MESSAGE_CONFIG_KEY,
)
from nameko_like.exceptions import (
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
from nameko_like.protocols import ExcInfo
from nameko_like.web.connection import Connection, event_frame, kill_all
from nameko_like.web.frames import BoundedWebSocket
from nameko_like.web.hub import WebSocketHub
from nameko_like.web.server import WebServer
from nameko_like.worker_context import WorkerContext

__all__ = [
    "Connection", "WebSocketHub", "WebSocketHubProvider", "WebSocketRpc", "WebSocketServer",
    "event_frame", "rpc",
]

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment

_log = logging.getLogger(__name__)


_TOO_MANY_WEBSOCKETS = Response(
    "Error: too many websockets are open; try again later\n", status=503,
    headers={"Connection": "close", "Retry-After": "5"},
)


def _is_upgrade(environ: WSGIEnvironment) -> bool:
    """Whether a request asks for a websocket (as werkzeug's routing decides it)."""
    tokens = environ.get("HTTP_CONNECTION", "").lower().split(",")
    return (any(token.strip(" \t") == "upgrade" for token in tokens)
            and environ.get("HTTP_UPGRADE", "").lower() == "websocket")


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
        self._methods: dict[str, WebSocketRpc] = {}
        self._killed = False

    def setup(self) -> None:
        """Mount the endpoint on the web server."""
        self.wsgi_server.register_provider(self)

    def start(self) -> None:
        """Index the RPC entrypoints by method name."""
        # Only websocket RPC entrypoints register here, once bound to their method.
        providers = cast("set[WebSocketRpc]", self._providers)
        self._methods = {provider.method_name: provider for provider in providers
                         if provider.method_name is not None}

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

    def handle_request(self, request: Request) -> WSGIApplication:
        """Answer the upgrade request with eventlet's websocket application.

        A request that is not a websocket upgrade gets werkzeug's 400, as
        Nameko's websocket-only rule answers it.
        """
        if not _is_upgrade(request.environ):
            return BadRequest()
        client = request.environ["eventlet.input"].get_socket()
        if not self.wsgi_server.upgrade_to_websocket(client):
            # DEBUG only: at WARNING, a client could flood the log.
            _log.debug("refused a websocket from %s: WEB_MAX_WEBSOCKETS are open",
                       request.remote_addr)
            return _TOO_MANY_WEBSOCKETS
        context_data = self.wsgi_server.context_data_from_headers(request)
        config = self.container.config
        max_message = config.get(WEB_MAX_WEBSOCKET_MESSAGE_CONFIG_KEY) or config.get(
            WEB_MAX_CONTENT_LENGTH_CONFIG_KEY, DEFAULT_WEB_MAX_CONTENT_LENGTH
        )
        websocket_app = eventlet.websocket.WebSocketWSGI(
            partial(self._serve, context_data, max_message), max_frame_length=max_message
        )
        # Pre-RFC 6455 drafts are obsolete, and unsafe.
        websocket_app.support_legacy_versions = False
        app: WSGIApplication = websocket_app
        return app

    def _serve(self, context_data: dict[str, Any], max_message: int, ws: Any) -> None:
        ws = BoundedWebSocket.adopt(ws, max_message)
        # The per-operation HTTP timeout would end idle websockets (their
        # number is bounded by WEB_MAX_WEBSOCKETS instead).
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
        except Exception as exc:  # noqa: BLE001 - a protocol error from the client ends its connection
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
                # greenthread when it is killed too: kill_all() kills every
                # call even then (an interrupted loop left them, and the
                # writer, running).
                kill_all(calls.coroutines_running)
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
            # Checked once the correlation id is known, so the error carries
            # it (as Nameko's, which fails later, on the call's signature).
            if not isinstance(data, dict):
                raise MalformedRequest('"data" must be an object of keyword arguments')
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
        except Exception as exc:  # noqa: BLE001 - every failure is answered to the client
            # The error as Nameko sends it: exc_type, exc_path, exc_args, value.
            reply = json.dumps(
                {"type": "result", "success": False, "error": serialize(exc),
                 "correlation_id": correlation_id},
                default=str,
            )
        connection.send(reply)

    @staticmethod
    def _parse_frame(frame: Any) -> tuple[str, Any, Any]:
        try:
            request = json.loads(frame)
        except ValueError:
            raise MalformedRequest("a websocket frame must be a JSON object") from None
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            raise MalformedRequest('a websocket frame must be {"method": ..., "data": {...}}')
        return request["method"], request.get("data") or {}, request.get("correlation_id")


class WebSocketHubProvider(DependencyProvider):
    """Gives workers the :class:`WebSocketHub` of the container's websocket server."""

    server = WebSocketServer()

    @property
    def hub(self) -> WebSocketHub:
        """The hub (an attribute of Nameko's provider once set up)."""
        return self.server.hub

    def get_dependency(self, worker_ctx: WorkerContext) -> WebSocketHub:
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

    def handle_message(self, socket_id: str, data: dict[str, Any],
                       context_data: dict[str, Any]) -> Any:
        """Run a worker with ``data`` as keyword arguments; return its result."""
        done = eventlet.event.Event()
        self.container.spawn_worker(
            self, (socket_id,), data,
            context_data=context_data,
            handle_result=partial(self.handle_result, done),
        )
        return done.wait()

    def handle_result(self, done: Any, worker_ctx: WorkerContext, result: Any,
                      exc_info: ExcInfo | None) -> tuple[Any, ExcInfo | None]:
        """Hand the outcome to the waiting frame handler (runs in the worker)."""
        done.send(result, exc_info)
        return result, exc_info


rpc = WebSocketRpc.decorator
