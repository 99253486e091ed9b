"""Routing requests to the web entrypoints: the WSGI application of a web server.

:class:`WsgiApp` matches each request against the werkzeug ``Map`` of the
providers registered with the server (HTTP entrypoints, the websocket
endpoint) and lets the matching provider answer it; no match is werkzeug's
404, 405 (with ``Allow``) or redirect, and a stopping server answers 503.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect, Rule
from werkzeug.wrappers import Request, Response

from nameko_like import instrumentation
from nameko_like.web.request import RoutedRequest

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from nameko_like.web.server import WebServer

_log = logging.getLogger(__name__)


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
        request = RoutedRequest(environ, populate_request=False)
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
