"""The HTTP engines a :class:`~nameko_like.web.server.WebServer` can serve with.

* :class:`HttpEngine` (``WEB_ENGINE: httptools``, the default): our server,
  requests parsed by httptools (llhttp, in C), every request limit of
  :class:`~nameko_like.web.limits.RequestLimits` enforced;
* :class:`EventletEngine` (``WEB_ENGINE: eventlet``): eventlet.wsgi, as
  Nameko serves, with its pure-Python parsing. It keeps the connection
  limits, the body-size limit of a ``Content-Length`` and the socket
  time-out, but not the head deadline, the head limits or the chunk limits.
  It is used anyway, with a warning, when httptools cannot be imported.

Both offer eventlet's ``process_request(conn_state)``, as the object
:meth:`~nameko_like.web.server.WebServer.get_wsgi_server` returns did in
Nameko, and ``app``, ``request_timeout`` and ``socket_timeout``.
"""

from __future__ import annotations

import importlib
import logging
import socket
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Response

from nameko_like._eventlet import eventlet
from nameko_like.constants import DEFAULT_WEB_ENGINE, WEB_ENGINE_CONFIG_KEY
from nameko_like.exceptions import ConfigurationError
from nameko_like.web.limits import RequestLimits

import eventlet.wsgi  # after _eventlet silenced its import warning

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

_log = logging.getLogger(__name__)

ENGINES = ("httptools", "eventlet")


def choose_engine(config: Mapping[str, Any]) -> str:
    """The engine ``WEB_ENGINE`` names, or ``"eventlet"`` if httptools is missing."""
    name = str(config.get(WEB_ENGINE_CONFIG_KEY, DEFAULT_WEB_ENGINE))
    if name not in ENGINES:
        raise ConfigurationError(
            f"{WEB_ENGINE_CONFIG_KEY} must be one of {', '.join(map(repr, ENGINES))}, "
            f"got {name!r}")
    if name == "httptools":
        try:
            importlib.import_module("nameko_like.web.http_connection")
        except ImportError as exc:
            _log.warning(
                "httptools cannot be imported (%s): serving HTTP with eventlet.wsgi, "
                "without the header deadline and head limits; install httptools "
                "(pip install httptools) to get them back", exc)
            return "eventlet"
    return name


def server_environ(sock: socket.socket) -> WSGIEnvironment:
    """The environ keys every request to the server listening on ``sock`` shares."""
    return {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "SCRIPT_NAME": "",
        "GATEWAY_INTERFACE": "CGI/1.1",
    }


class HttpEngine:
    """Serves connections with :class:`~nameko_like.web.http_connection.HttpConnection`.

    Args:
        sock: the listening socket.
        app: the WSGI application.
        limits: the request limits.
    """

    def __init__(self, sock: socket.socket, app: WSGIApplication, limits: RequestLimits) -> None:
        from nameko_like.web.http_connection import HttpConnection

        self._connection_class = HttpConnection
        self.app = app
        self.limits = limits
        self.request_timeout = self.socket_timeout = limits.request_timeout
        self._environ = server_environ(sock)

    def process_request(self, conn_state: list[Any]) -> None:
        """Serve the connection ``[address, socket, STATE_*]`` until it ends."""
        self._connection_class(conn_state, self.app, self.limits, self._environ).serve()


def limit_body(app: WSGIApplication, max_content_length: int) -> WSGIApplication:
    """Wrap ``app`` to answer 413 to a ``Content-Length`` over the limit."""
    too_large = Response(f"413 Content Too Large: request body larger than "
                         f"{max_content_length} bytes\n", status=413,
                         headers={"Connection": "close"})

    def limited(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH") or "0"
        if length.isdigit() and int(length) > max_content_length:
            return too_large(environ, start_response)
        return app(environ, start_response)

    return limited


# eventlet ships no type information: its classes are Any to mypy.
class EventletEngine(eventlet.wsgi.Server):  # type: ignore[misc]
    """eventlet.wsgi's server, with the limits it can keep (see the module)."""

    def __init__(self, sock: socket.socket, app: WSGIApplication, limits: RequestLimits) -> None:
        super().__init__(
            sock, sock.getsockname(), limit_body(app, limits.max_content_length),
            protocol=eventlet.wsgi.HttpProtocol,
            # No traceback in any response; access lines are eventlet's, at DEBUG.
            debug=False,
            log_output=False,
            socket_timeout=limits.request_timeout,
            keepalive=limits.idle_timeout,
            url_length_limit=limits.max_request_line,
        )
        self.limits = limits
        self.request_timeout = limits.request_timeout
        # eventlet reports an application that raised through .info();
        # with log_output off that would be silenced.
        self.log = _EventletLog()


class _EventletLog:
    """Where eventlet.wsgi reports its own errors: our logger, never stderr."""

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        _log.error(msg, *args)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        _log.error(msg, *args)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        _log.debug(msg, *args)

    def write(self, msg: str, *args: Any) -> None:
        _log.debug(msg, *args)
