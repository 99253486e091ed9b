"""``WebServer``: the one HTTP server a container's web entrypoints share.

It listens, admits connections within :class:`~nameko_like.web.limits.ConnectionLimits`
and hands each to its engine (:mod:`nameko_like.web.engine`) in its own
greenthread; routing is :mod:`nameko_like.web.routing`'s.
"""

from __future__ import annotations

import errno
import logging
import socket
from typing import TYPE_CHECKING, Any, cast

from werkzeug.routing import Map
from werkzeug.wrappers import Request

from nameko_like._eventlet import eventlet
from nameko_like.constants import (
    CONTRACTS_DOCS_PATH_CONFIG_KEY,
    DEFAULT_WEB_SERVER_ADDRESS,
    WEB_SERVER_CONFIG_KEY,
)
from nameko_like.exceptions import ConfigurationError
from nameko_like.extensions import ProviderCollector, SharedExtension
from nameko_like.protocols import ContainerInterface
from nameko_like.web.engine import EventletEngine, HttpEngine, choose_engine
from nameko_like.web.limits import ConnectionLimits, RequestLimits
from nameko_like.web.routing import (
    ROUTE_ENVIRON_KEY,
    UNMATCHED_ROUTE,
    WebProvider,
    WsgiApp,
    route_template,
)
from nameko_like.worker_greenlet import caller_of

import eventlet.wsgi  # after _eventlet silenced its import warning

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

__all__ = [
    "ROUTE_ENVIRON_KEY", "UNMATCHED_ROUTE", "WebProvider", "WebServer", "WsgiApp",
    "listen_error_message", "parse_address", "route_template",
]

_log = logging.getLogger(__name__)

# accept() errors that mean "try again later", not "the server is broken".
_TRANSIENT_ACCEPT_ERRORS = {
    errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM,
    errno.ECONNABORTED, errno.EPROTO, errno.EPERM,
}


def parse_address(address: str) -> tuple[str, int]:
    """Split ``"host:port"`` (or ``"[v6-host]:port"``) into ``(host, port)``."""
    host, sep, port = str(address).rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigurationError(
            f"{WEB_SERVER_CONFIG_KEY} must look like 'host:port' (e.g. "
            f"{DEFAULT_WEB_SERVER_ADDRESS!r}), got {address!r}"
        )
    return host.strip("[]") or "0.0.0.0", int(port)


def listen_error_message(host: str, port: int, exc: OSError) -> str:
    """Why the HTTP server cannot listen on ``host:port``, naming the config key and the fix."""
    shown_host = f"[{host}]" if ":" in host else host
    where = (f"cannot serve HTTP on {shown_host}:{port} ({WEB_SERVER_CONFIG_KEY}): "
             f"{exc.strerror or exc}")
    change = (f"set {WEB_SERVER_CONFIG_KEY} to another address (e.g. "
              f"'{shown_host}:{port + 1 if port < 65535 else 0}'; port 0 picks a free one)")
    if exc.errno == errno.EADDRINUSE:
        return (f"{where}; another process, or another service with @http entrypoints "
                f"in this one, listens there (run such services in separate processes): "
                f"stop it or {change}")
    if exc.errno == errno.EACCES:
        return f"{where}; ports below 1024 need privileges: {change}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{where}; {host} is not an address of this machine: {change}"
    return f"{where}; {change}"


class WebServer(ProviderCollector, SharedExtension):
    """The HTTP server of a container, shared by all its web entrypoints.

    It listens on ``WEB_SERVER_ADDRESS`` (``host:port``; port 0 picks a free
    port, readable from :attr:`port` once started) and serves each
    connection in its own greenthread, so idle or slow connections never
    hold a service worker. Subclass it to change how the server is built:

    * :meth:`get_wsgi_app` to wrap the application in WSGI middleware;
    * :meth:`get_wsgi_server` to change the engine serving each connection
      (anything with eventlet.wsgi's ``process_request(conn_state)``);
    * :meth:`context_data_from_headers` to pass request headers to workers
      as context data.

    A subclass must then be declared by every web entrypoint of the
    container (``server = MyWebServer()`` on an ``HttpRequestHandler``
    subclass), as one container has one web server.
    """

    def __init__(self) -> None:
        super().__init__()
        self._sock: Any = None
        self._wsgi_server: Any = None
        self._pool: Any = None
        self._accept_thread: Any = None
        self._limits: ConnectionLimits | None = None
        self.accepting = False

    @property
    def sharing_key(self) -> Any:
        """All web server classes share one key: one server per container."""
        return WebServer

    def bind(self, container: ContainerInterface) -> WebServer:
        """Return the container's web server, refusing a second server class."""
        existing = container.shared_extensions.get(WebServer)
        if existing is not None and type(existing) is not type(self):
            raise ConfigurationError(
                f"{container.service_name} declares two web server classes, "
                f"{type(existing).__name__} and {type(self).__name__}; a container "
                f"has one web server, so declare the same class on every web entrypoint"
            )
        return super().bind(container)

    @property
    def bind_addr(self) -> tuple[str, int]:
        """``(host, port)`` from ``WEB_SERVER_ADDRESS``."""
        address = self.container.config.get(WEB_SERVER_CONFIG_KEY, DEFAULT_WEB_SERVER_ADDRESS)
        return parse_address(address)

    @property
    def port(self) -> int:
        """The port the server listens on (useful with port 0)."""
        if self._sock is None:
            raise RuntimeError("the web server is not listening yet")
        port: int = self._sock.getsockname()[1]
        return port

    def setup(self) -> None:
        """Check the configured address early, with a clear error."""
        self.bind_addr  # noqa: B018 - raises ConfigurationError if malformed

    def start(self) -> None:
        """Listen, then accept connections in a container-managed thread."""
        if self._sock is not None:
            return
        config = self.container.config
        host, port = self.bind_addr
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            # No SO_REUSEPORT (eventlet's default): with it a second service
            # or process on the same address would silently get half of the
            # connections, and answer 404 for the other's routes.
            self._sock = eventlet.listen((host, port), family=family, backlog=1024,
                                         reuse_port=False)
        except OSError as exc:
            raise ConfigurationError(listen_error_message(host, port, exc)) from exc
        wsgi_app = self.get_wsgi_app()
        docs_path = config.get(CONTRACTS_DOCS_PATH_CONFIG_KEY)
        if docs_path:  # the service's contract documents, beside its routes
            from nameko_like.contracts.serving import with_documents

            wsgi_app = with_documents(wsgi_app, self.container.service_cls, config, docs_path)
        self._wsgi_server = self.get_wsgi_server(self._sock, wsgi_app)
        self._limits = limits = ConnectionLimits.from_config(config, self.container.max_workers)
        # The limits decide who waits; the pool only keeps the greenthreads.
        self._pool = eventlet.GreenPool(limits.max_connections + limits.max_websockets)
        self.accepting = True
        self._accept_thread = self.container.spawn_managed_thread(
            self._accept_loop, identifier="web server"
        )
        _log.debug("%s serving HTTP on %s:%s", self.container.service_name, host, self.port)

    def get_wsgi_app(self) -> WSGIApplication:
        """Return the WSGI application to serve; override to add middleware."""
        return WsgiApp(self)

    def get_wsgi_server(self, sock: socket.socket, wsgi_app: WSGIApplication,
                        protocol: type | None = None) -> HttpEngine | EventletEngine:
        """Return the engine serving ``wsgi_app`` on ``sock`` (``WEB_ENGINE``).

        With ``protocol`` (an eventlet.wsgi protocol class, as Nameko's
        signature has it), eventlet.wsgi serves with that protocol.
        """
        config = self.container.config
        limits = RequestLimits.from_config(config)
        if protocol is not None:
            engine = EventletEngine(sock, wsgi_app, limits)
            engine.protocol = protocol
            return engine
        if choose_engine(config) == "eventlet":
            return EventletEngine(sock, wsgi_app, limits)
        return HttpEngine(sock, wsgi_app, limits)

    def get_url_map(self) -> Map:
        """The werkzeug ``Map`` of every registered provider's rule."""
        # Only web providers register with a web server.
        providers = cast("set[WebProvider]", self._providers)
        return Map([provider.get_url_rule() for provider in providers])

    def context_data_from_headers(self, request: Request) -> dict[str, Any]:
        """Context data for the worker handling ``request``; none by default."""
        return {}

    def upgrade_to_websocket(self, client: socket.socket) -> bool:
        """Count the connection on ``client`` as a websocket from now on.

        Returns False when ``WEB_MAX_WEBSOCKETS`` are open already: the
        caller then refuses the upgrade.
        """
        return self._limits is not None and self._limits.upgrade(client)

    def unregister_provider(self, provider: Any) -> None:
        """Forget ``provider``; once none remain, stop accepting requests."""
        super().unregister_provider(provider)
        if not self._providers:
            self._stop_accepting()

    def stop(self) -> None:
        """Stop accepting, let in-flight requests finish, then close."""
        self.wait_for_providers()
        self._stop_accepting()
        if self._pool is not None:
            # The container has already waited for the workers; what is left
            # is writing their responses, which the socket timeout bounds.
            # (an eventlet.wsgi.Server from an override has socket_timeout only)
            timeout = (getattr(self._wsgi_server, "request_timeout", None)
                       or self._wsgi_server.socket_timeout)
            with eventlet.Timeout(timeout, False):
                self._wait_for_connections()
            self._kill_connections()

    def kill(self) -> None:
        """Close the server and every connection at once."""
        self._stop_accepting()
        self._kill_connections()

    def _stop_accepting(self) -> None:
        if not self.accepting:
            return
        self.accepting = False
        if self._accept_thread is not None:
            self._accept_thread.kill()
        self._sock.close()
        # Shutting the read side makes every connection see the end of its
        # input: idle ones (keep-alive, websockets) end, a request still
        # being received is dropped, while a request being handled can
        # still write its response.
        connections = self._limits.connections if self._limits is not None else {}
        for state in list(connections.values()):
            state[2] = eventlet.wsgi.STATE_CLOSE
            try:
                state[1].shutdown(socket.SHUT_RD)
            except OSError:
                pass
        _log.debug("%s stopped accepting HTTP requests", self.container.service_name)

    def _wait_for_connections(self) -> None:
        pool, current = self._pool, caller_of(eventlet.getcurrent())
        if current not in pool.coroutines_running:
            pool.waitall()
            return
        # Stopped from an @http worker, which runs for its connection's
        # greenthread: wait for the others (waitall would wait for itself).
        while len(pool.coroutines_running) > 1:
            eventlet.sleep(0.05)

    def _kill_connections(self) -> None:
        if self._pool is None:
            return
        # An @http worker runs for its connection's greenthread (in a child
        # greenlet): one that stops or kills the container must not be
        # killed halfway through.
        current = caller_of(eventlet.getcurrent())
        for thread in list(self._pool.coroutines_running):
            if thread is not current:
                thread.kill()

    def _accept_loop(self) -> None:
        sock, pool = self._sock, self._pool
        limits = cast("ConnectionLimits", self._limits)  # made by start(), before this runs
        timeout = self._wsgi_server.socket_timeout
        while True:
            try:
                client, address = sock.accept()
            except OSError as exc:
                if exc.errno not in _TRANSIENT_ACCEPT_ERRORS:
                    raise
                _log.warning("web server could not accept a connection: %s", exc)
                eventlet.sleep(0.1)
                continue
            # Blocks while every HTTP slot is in a request: new clients
            # wait in the backlog.
            state = limits.admit(client, address)
            if state is None:
                client.close()
                continue
            client.settimeout(timeout)
            pool.spawn(self._serve_connection, state)

    def _serve_connection(self, state: list[Any]) -> None:
        try:
            self._wsgi_server.process_request(state)
        except OSError as exc:
            _log.debug("connection from %s ended: %s", state[0], exc)
        except Exception:  # noqa: BLE001 - one connection's failure must not stop the server
            _log.exception("error serving the connection from %s", state[0])
        finally:
            if self._limits is not None:
                self._limits.release(state)
            state[2] = eventlet.wsgi.STATE_CLOSE
            state[1].close()
