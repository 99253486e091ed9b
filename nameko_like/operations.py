"""The operations endpoint: ``/metrics``, ``/health/live`` and ``/health/ready``.

A container whose config sets ``METRICS_ADDRESS`` attaches itself when it
starts (:func:`attach`); the first one to use an address starts the server
there, the others share it, so several services in one process answer on
one endpoint. When the last of them stops, the server stops and its
observers are unregistered: with no address configured, nothing here runs.

The server is a small eventlet WSGI server in a greenthread of its own,
apart from the services' HTTP servers, so a service busy with requests
still answers probes.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from nameko_like import instrumentation
from nameko_like._eventlet import eventlet
from nameko_like.constants import METRICS_ADDRESS_CONFIG_KEY
from nameko_like.exceptions import ConfigurationError
from nameko_like.health import readiness
from nameko_like.metrics import Metrics, require_prometheus_client

import eventlet.wsgi  # after _eventlet silenced its import warning

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

_log = logging.getLogger(__name__)

__all__ = ["OperationsServer", "attach", "parse_metrics_address", "servers"]

#: Running servers by the address string configured.
_servers: dict[str, OperationsServer] = {}
_lock = threading.Lock()


def parse_metrics_address(address: object) -> tuple[str, int]:
    """Split ``METRICS_ADDRESS`` (``"host:port"``) or raise a ConfigurationError."""
    host, sep, port = str(address).rpartition(":")
    if not isinstance(address, str) or not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigurationError(
            f"{METRICS_ADDRESS_CONFIG_KEY} must look like 'host:port' (e.g. '127.0.0.1:9100'; "
            f"port 0 picks a free one), got {address!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body, indent=1).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
    return [data]


class OperationsServer(instrumentation.Observer):
    """Serves the operations endpoints for the containers attached to one address.

    Args:
        host, port: where to listen (port 0: a free port; see ``address``).
    """

    def __init__(self, host: str, port: int) -> None:
        # insertion-ordered sets of containers
        self._starting: dict[Any, None] = {}
        self._started: dict[Any, None] = {}
        self.metrics = Metrics(self.containers)
        self._metrics_app: WSGIApplication = _metrics_app(self.metrics)
        try:
            self._sock = eventlet.listen((host, port))
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve metrics on {host}:{port} ({exc}): set {METRICS_ADDRESS_CONFIG_KEY} "
                "to a free host:port") from exc
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        #: ``(host, port)`` actually bound
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self._thread: Any = None  # eventlet's GreenThread

    @property
    def url(self) -> str:
        """Base URL of the endpoint, e.g. ``http://127.0.0.1:9100``."""
        host, port = self.address
        return f"http://{host}:{port}"

    def containers(self) -> list[Any]:
        """The started containers attached here."""
        return list(self._started)

    def start(self) -> None:
        """Serve in a greenthread and register the observers."""
        self._thread = eventlet.spawn(eventlet.wsgi.server, self._sock, self.wsgi_app,
                                      log_output=False)
        instrumentation.register(self.metrics)
        instrumentation.register(self)
        _log.info("metrics at %s/metrics, health at %s/health/ready", self.url, self.url)

    def stop(self) -> None:
        """Stop serving and unregister the observers."""
        instrumentation.unregister(self)
        instrumentation.unregister(self.metrics)
        if self._thread is not None:
            self._thread.kill()
        self._sock.close()

    def add(self, container: Any) -> None:
        """Attach a container about to start (not ready until it has)."""
        self._starting[container] = None

    # -- hooks ---------------------------------------------------------------------

    def container_started(self, container: Any) -> None:
        """A container attached here finished starting: count it for readiness."""
        if container in self._starting:
            del self._starting[container]
            self._started[container] = None

    def container_stopped(self, container: Any) -> None:
        """Detach a stopped container; stop the server with the last one."""
        self._starting.pop(container, None)
        self._started.pop(container, None)
        if not self._starting and not self._started:
            with _lock:
                for address, server in list(_servers.items()):
                    if server is self:
                        del _servers[address]
            self.stop()

    # -- WSGI ----------------------------------------------------------------------

    def wsgi_app(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        """Route to ``/metrics``, ``/health/live`` or ``/health/ready``."""
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            self._readiness()  # runs the checks: their gauge is current
            return self._metrics_app(environ, start_response)
        if path == "/health/live":
            return _json(start_response, "200 OK", {
                "status": "alive",
                "services": sorted(c.service_name for c in (*self._starting, *self._started)),
            })
        if path == "/health/ready":
            result = self._readiness()
            status = "200 OK" if result.ready else "503 Service Unavailable"
            return _json(start_response, status, result.as_json())
        return _json(start_response, "404 Not Found", {
            "error": f"no such endpoint {path!r}: try /metrics, /health/live, /health/ready"})

    def _readiness(self) -> Any:
        result = readiness(self._started, self._starting)
        for check in result.checks:
            self.metrics.health_check.labels(check.service, check.name).set(int(check.ok))
        return result


def _metrics_app(metrics: Metrics) -> WSGIApplication:
    from prometheus_client import make_wsgi_app

    app: WSGIApplication = make_wsgi_app(metrics.registry)
    return app


def attach(container: Any) -> OperationsServer:
    """Attach ``container`` to the server at its ``METRICS_ADDRESS``, starting it if needed."""
    address = container.config[METRICS_ADDRESS_CONFIG_KEY]
    require_prometheus_client()
    with _lock:
        server = _servers.get(address)
        if server is None:
            server = OperationsServer(*parse_metrics_address(address))
            server.start()
            _servers[address] = server
        server.add(container)
    return server


def servers() -> list[OperationsServer]:
    """The operations servers running in this process."""
    with _lock:
        return list(_servers.values())
