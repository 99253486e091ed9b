"""What ``nameko_like run`` logs once the services have started.

The version, each service with its entrypoints, the broker (password
masked), and where HTTP, websockets and the backdoor listen, with the port
the system really gave when 0 was asked for. A new user sees at a glance
what the process serves; an operator finds it in the logs.

Imported only after eventlet has monkey-patched the standard library.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import Any

from nameko_like.amqp.connection import safe_uri
from nameko_like.containers import ServiceContainer
from nameko_like.events import SERVICE_POOL, EventHandler
from nameko_like.extensions import Entrypoint
from nameko_like.messaging import Consumer
from nameko_like.rpc.entrypoint import Rpc
from nameko_like.timer import Timer

_log = logging.getLogger(__name__)


def _loaded_class(module: str, name: str) -> type | None:
    """``module.name`` if the module is imported already, else None.

    The web classes are looked up this way so that reporting on an RPC-only
    service does not import werkzeug and the HTTP server: when their module
    was never imported, no extension can be an instance of them.
    """
    loaded = sys.modules.get(module)
    return getattr(loaded, name) if loaded is not None else None


def _is_a(obj: object, module: str, name: str) -> bool:
    cls = _loaded_class(module, name)
    return cls is not None and isinstance(obj, cls)


def describe_entrypoint(entrypoint: Entrypoint) -> str:
    """One entrypoint as ``kind name`` (``rpc hello``, ``http GET /users/<id> -> get``)."""
    method = entrypoint.method_name
    if isinstance(entrypoint, Rpc):
        return f"rpc {method}"
    if _is_a(entrypoint, "nameko_like.web.websocket", "WebSocketRpc"):
        return f"websocket rpc {method}"
    if _is_a(entrypoint, "nameko_like.web.handlers", "HttpRequestHandler"):
        methods = ",".join(entrypoint.methods)  # type: ignore[attr-defined]
        return f"http {methods} {entrypoint.url} -> {method}"  # type: ignore[attr-defined]
    if isinstance(entrypoint, EventHandler):
        kind = "" if entrypoint.handler_type == SERVICE_POOL else f" ({entrypoint.handler_type})"
        return (f"event_handler {entrypoint.source_service}.{entrypoint.event_type}{kind} "
                f"-> {method}")
    if isinstance(entrypoint, Consumer):
        return f"consume {entrypoint.queue.name} -> {method}"
    if isinstance(entrypoint, Timer):
        return f"timer {entrypoint.description} -> {method}"
    # an extension of the user's or of another library: its class names its kind
    return f"{type(entrypoint).__name__} -> {method}"


def describe_service(container: ServiceContainer) -> str:
    """``service NAME: entrypoint; entrypoint; ...`` (sorted, so the log is stable)."""
    entrypoints = sorted(describe_entrypoint(entrypoint) for entrypoint in container.entrypoints)
    return f"service {container.service_name}: {'; '.join(entrypoints) or 'no entrypoints'}"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def listening_addresses(container: ServiceContainer) -> list[str]:
    """Where ``container`` serves HTTP and websockets (real ports), if it does."""
    found = []
    extensions = container.shared_extensions.values()
    servers: list[Any] = [
        ext for ext in extensions if _is_a(ext, "nameko_like.web.server", "WebServer")]
    server = servers[0] if servers else None
    if server is not None and server.accepting:
        host, port = _url_host(server.bind_addr[0]), server.port
        name = container.service_name
        found.append(f"HTTP ({name}) on http://{host}:{port}/")
        websocket_servers: list[Any] = [
            ext for ext in extensions if _is_a(ext, "nameko_like.web.websocket", "WebSocketServer")]
        for websockets in websocket_servers:
            found.append(f"websockets ({name}) on ws://{host}:{port}{websockets.path}")
    return found


def log_startup(containers: Iterable[ServiceContainer], config: dict[str, Any],
                backdoor: tuple[str, int] | None = None) -> None:
    """Log (INFO) the version, services, broker and listening addresses."""
    from nameko_like import __version__

    containers = list(containers)
    _log.info("nameko_like %s on Python %s", __version__, sys.version.split()[0])
    _log.info("broker %s", safe_uri(config))
    for container in containers:
        _log.info("%s", describe_service(container))
    for container in containers:
        for address in listening_addresses(container):
            _log.info("%s", address)
    if backdoor is not None:
        _log.info("backdoor on %s:%s (connect: nameko_like backdoor %s:%s)",
                  _url_host(backdoor[0]), backdoor[1], _url_host(backdoor[0]), backdoor[1])
