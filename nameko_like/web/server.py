"""``WebServer``: the one HTTP server a container's web entrypoints share."""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.wrappers import Request, Response

from nameko_like import instrumentation
from nameko_like._eventlet import eventlet
from nameko_like.constants import (
    CONTRACTS_DOCS_PATH_CONFIG_KEY,
    DEFAULT_WEB_IDLE_TIMEOUT,
    DEFAULT_WEB_MAX_CONTENT_LENGTH,
    DEFAULT_WEB_MAX_REQUEST_CHUNKS,
    DEFAULT_WEB_SERVER_ADDRESS,
    DEFAULT_WEB_SOCKET_TIMEOUT,
    WEB_IDLE_TIMEOUT_CONFIG_KEY,
    WEB_MAX_CONTENT_LENGTH_CONFIG_KEY,
    WEB_MAX_REQUEST_CHUNKS_CONFIG_KEY,
    WEB_SERVER_CONFIG_KEY,
    WEB_SOCKET_TIMEOUT_CONFIG_KEY,
)
from nameko_like.exceptions import ConfigurationError
from nameko_like.extensions import ProviderCollector, SharedExtension
from nameko_like.protocols import ContainerInterface
from nameko_like.web.limits import ConnectionLimits
from nameko_like.web.protocol import HttpProtocol, WsgiServer

import eventlet.wsgi  # after _eventlet silenced its import warning

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

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


class WebProvider(Protocol):
    """What registers with a :class:`WebServer`: a URL rule and its handler."""

    def get_url_rule(self) -> Rule:
        """The werkzeug rule of the URLs this provider serves (itself the endpoint)."""

    def handle_request(self, request: Request) -> WSGIApplication:
        """Handle one request to the rule; return the WSGI application answering it."""


#: WSGI environ key holding the matched route template (while observed).
ROUTE_ENVIRON_KEY = "nameko_like.route"
#: Route label of requests no rule matched (404, 405, redirects, 503).
UNMATCHED_ROUTE = "<unmatched>"
#: HTTP methods reported as themselves; any other is reported as ``OTHER``.
_KNOWN_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"))


def route_template(provider: WebProvider) -> str:
    """The URL rule a provider serves (``/trips/<int:trip_id>``), never a raw path."""
    url = getattr(provider, "url", None)
    return url if isinstance(url, str) else provider.get_url_rule().rule


class WsgiApp:
    """The WSGI application: routes each request to the provider of its URL.

    Providers are the extensions registered with the server (HTTP
    entrypoints, the websocket endpoint); each offers ``get_url_rule()`` and
    ``handle_request(request)``, which returns a WSGI application (usually a
    werkzeug ``Response``). URL arguments are set on ``request.path_values``.
    """

    #: How many (path, method) routing results are remembered.
    match_cache_size = 1024

    def __init__(self, server: WebServer) -> None:
        self.server = server
        self.url_map = server.get_url_map()
        # Matching with an explicit path and method reads nothing else from
        # the adapter, so one adapter serves every request; binding per
        # request is only needed to build a redirect's absolute URL.
        self._adapter = self.url_map.bind("localhost")
        self._matches: dict[tuple[str, str], tuple[WebProvider, Mapping[str, Any]]] = {}

    def match(self, path: str, method: str) -> tuple[WebProvider, dict[str, Any]]:
        """``(provider, url_values)`` for a request; raises werkzeug's
        ``NotFound``, ``MethodNotAllowed`` or ``RequestRedirect``."""
        key = (path, method)
        found = self._matches.get(key)
        if found is None:
            # the endpoint of every rule is its provider (see get_url_rule)
            found = self._adapter.match(path, method)
            # Bounded: a client requesting endless distinct URLs only
            # restarts the cache.
            if len(self._matches) >= self.match_cache_size:
                self._matches.clear()
            self._matches[key] = found
        return found[0], dict(found[1])

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request (503 once the server stopped accepting)."""
        if instrumentation.observers:
            return self._observed(environ, start_response)
        return self._answer(environ, start_response)

    def _observed(self, environ: WSGIEnvironment,
                  start_response: StartResponse) -> Iterable[bytes]:
        """Answer while measuring, then tell the observers (route template only)."""
        started = time.perf_counter()
        status = [500]
        # paired with http_request_done below, in this greenthread
        instrumentation.emit("http_request_started", environ)

        def capture(status_line: str, headers: list[tuple[str, str]],
                    exc_info: OptExcInfo | None = None) -> Callable[[bytes], object]:
            status[0] = int(status_line[:3])
            return start_response(status_line, headers, exc_info)

        try:
            return self._answer(environ, capture)
        finally:
            method = environ.get("REQUEST_METHOD", "")
            instrumentation.emit(
                "http_request_done", self.server.container.service_name,
                environ.get(ROUTE_ENVIRON_KEY, UNMATCHED_ROUTE),
                method if method in _KNOWN_METHODS else "OTHER",
                status[0], time.perf_counter() - started)

    def _answer(self, environ: WSGIEnvironment,
                start_response: StartResponse) -> Iterable[bytes]:
        response: WSGIApplication
        if not self.server.accepting:
            response = _SERVICE_STOPPING
            return response(environ, start_response)
        request = Request(environ, populate_request=False)
        try:
            provider, values = self.match(request.path, request.method)
        except RequestRedirect:
            response = self._redirect(environ)
        except HTTPException as exc:
            response = exc
        else:
            # Nameko's attribute, which werkzeug's Request does not declare
            request.path_values = values  # type: ignore[attr-defined]
            if instrumentation.observers:
                environ[ROUTE_ENVIRON_KEY] = route_template(provider)
            try:
                response = provider.handle_request(request)
            except Exception:  # noqa: BLE001 - a provider bug must not leak a traceback
                _log.exception("%r failed to handle a request", provider)
                response = Response("Error: internal server error\n", status=500)
        return response(environ, start_response)

    def _redirect(self, environ: WSGIEnvironment) -> WSGIApplication:
        try:
            self.url_map.bind_to_environ(environ).match()
        except HTTPException as exc:
            return exc
        return Response("Error: redirect expected\n", status=500)  # pragma: no cover


_SERVICE_STOPPING = Response(
    "Error: the service is stopping\n", status=503, headers={"Connection": "close"}
)


class WebServer(ProviderCollector, SharedExtension):
    """The HTTP server of a container, shared by all its web entrypoints.

    It listens on ``WEB_SERVER_ADDRESS`` (``host:port``; port 0 picks a free
    port, readable from :attr:`port` once started) and serves each
    connection in its own greenthread, so idle or slow connections never
    hold a service worker. Subclass it to change how the server is built:

    * :meth:`get_wsgi_app` to wrap the application in WSGI middleware;
    * :meth:`get_wsgi_server` to change the connection handler;
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
                        protocol: type = HttpProtocol) -> WsgiServer:
        """Return the eventlet WSGI server object serving ``wsgi_app`` on ``sock``."""
        config = self.container.config
        return WsgiServer(
            sock,
            wsgi_app,
            max_content_length=config.get(
                WEB_MAX_CONTENT_LENGTH_CONFIG_KEY, DEFAULT_WEB_MAX_CONTENT_LENGTH
            ),
            request_timeout=config.get(WEB_SOCKET_TIMEOUT_CONFIG_KEY, DEFAULT_WEB_SOCKET_TIMEOUT),
            protocol=protocol,
            idle_timeout=config.get(WEB_IDLE_TIMEOUT_CONFIG_KEY, DEFAULT_WEB_IDLE_TIMEOUT),
            max_chunks=config.get(WEB_MAX_REQUEST_CHUNKS_CONFIG_KEY,
                                  DEFAULT_WEB_MAX_REQUEST_CHUNKS),
        )

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
            timeout = self._wsgi_server.request_timeout
            with eventlet.Timeout(timeout, False):
                self._pool.waitall()
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

    def _kill_connections(self) -> None:
        if self._pool is None:
            return
        for thread in list(self._pool.coroutines_running):
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
