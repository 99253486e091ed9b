"""``@http``: run a service method for each HTTP request to a URL.

Example::

    class Shop:
        name = "shop"

        @http("GET", "/items/<int:item_id>")
        def get_item(self, request, item_id):
            return json.dumps({"id": item_id})

The method gets the werkzeug ``Request`` and the URL's arguments as keyword
arguments. It may return a body (``str`` or ``bytes``), ``(status, body)``,
``(status, headers, body)`` or a werkzeug ``Response``.
"""

from __future__ import annotations

import logging
import re
from functools import partial
from typing import Any

from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from nameko_like import instrumentation
from nameko_like._eventlet import eventlet
from nameko_like.contracts import hooks as contracts
from nameko_like.contracts.errors import http_response as validation_response
from nameko_like.containers import ServiceContainer
from nameko_like.exceptions import (
    ConnectionNotFound,
    ContainerBeingKilled,
    DeclarationError,
    RequestError,
    serialize,
)
from nameko_like.extensions import Entrypoint
from nameko_like.protocols import ExcInfo
from nameko_like.web.response import WholeResponse
from nameko_like.web.server import WebServer
from nameko_like.worker_context import WorkerContext

_log = logging.getLogger(__name__)

_METHOD = re.compile(r"[A-Z]+")

#: Errors that are the client's fault: Nameko's ``BadRequest`` family (a
#: wrong signature, say) and werkzeug's ``BadRequest`` (malformed JSON).
_BAD_REQUESTS = (RequestError, ConnectionNotFound, BadRequest)


def _check_rule(url: str, methods: list[str]) -> None:
    """Raise ``DeclarationError`` unless werkzeug can route ``url``.

    Checked when the method is decorated, not when the service starts. A
    converter werkzeug does not know may be one a ``WebServer`` subclass
    adds to its map: that is left for the server to check.
    """
    try:
        Map([Rule(url, methods=methods)])
    except LookupError:
        pass
    except ValueError as exc:
        raise DeclarationError(
            f"invalid URL rule {url!r} ({exc}); a rule starts with '/', e.g. "
            f"'/items/<int:item_id>'") from None


_SPAWN_WORKER = ServiceContainer.spawn_worker


def _announce(request: Request, worker_ctx: WorkerContext) -> None:
    instrumentation.emit("worker_spawned", worker_ctx, request)


class _Outcome:
    """A worker's outcome for a request whose greenthread ran the worker itself.

    Called in the worker as its result handler (what the default
    ``handle_result`` does with its ``done``), or given ``send`` by an
    overriding ``handle_result``. No ``__init__`` (one is made per
    request): nothing sent, ``result`` is unset.
    """

    __slots__ = ("exc_info", "result")

    def __call__(self, worker_ctx: WorkerContext, result: Any,
                 exc_info: ExcInfo | None) -> tuple[Any, ExcInfo | None]:
        """Keep the outcome and pass it on unchanged (a ``ResultHandler``)."""
        self.result, self.exc_info = result, exc_info
        return result, exc_info

    def send(self, result: Any, exc_info: ExcInfo | None = None) -> None:
        """Keep the outcome (what ``Event.send`` is given by ``handle_result``)."""
        self.result, self.exc_info = result, exc_info

    def wait(self) -> Any:
        """The result, or raise the worker's error.

        Nothing sent means the worker failed outside its method (in a
        ``worker_setup``, say), and the container is being killed for it.
        """
        try:
            exc_info = self.exc_info
        except AttributeError:
            raise ContainerBeingKilled(
                "the worker failed before its result was handled; the container is "
                "being killed (see the log for the error)") from None
        if exc_info is not None:
            raise exc_info[1].with_traceback(exc_info[2])
        return self.result


class HttpRequestHandler(Entrypoint):
    """Entrypoint serving the HTTP requests to ``url`` with one of ``method``.

    Args:
        method: an HTTP method, or several separated by commas (``"GET,POST"``).
        url: a werkzeug URL rule, e.g. ``"/users/<int:user_id>"``.
        expected_exceptions: exceptions answered with ``400 Bad Request``.

    Errors are answered as plain text ``Error: <ExcType>: <message>``: an
    expected exception, a request error (``IncorrectSignature`` when the
    URL's arguments do not fit the method, ...) or a werkzeug ``BadRequest``
    with 400, another werkzeug client error (4xx) with its own status,
    anything else with 500. A body that is not ``str`` or ``bytes`` is a
    ``TypeError``, so a 500. A
    traceback is never sent. Override :meth:`response_from_exception` and
    :meth:`response_from_result` in a subclass to shape responses (see
    ``docs/examples/http_json_errors.py``).
    """

    server = WebServer()

    def __init__(
        self, method: str, url: str,
        expected_exceptions: type[BaseException] | tuple[type[BaseException], ...] = (),
        **kwargs: Any,
    ) -> None:
        if not isinstance(method, str) or not isinstance(url, str):
            raise DeclarationError(
                f"@http takes a method and a URL rule, e.g. @http('GET', '/items/<int:id>'); "
                f"got {method!r}, {url!r}")
        methods = [name.strip().upper() for name in method.split(",")]
        if not all(_METHOD.fullmatch(name) for name in methods):
            raise DeclarationError(
                f"invalid HTTP method list {method!r}; expected e.g. 'GET' or 'GET,POST'"
            )
        _check_rule(url, methods)
        self.method = method
        self.methods = methods
        self.url = url
        #: ``(positional count, *keyword names)`` known to fit the method
        self._fitting_arguments: set[tuple[int | str, ...]] = set()
        super().__init__(expected_exceptions=expected_exceptions, **kwargs)

    def setup(self) -> None:
        """Register with the container's web server."""
        contracts.prepare(self)
        self.server.register_provider(self)

    def stop(self) -> None:
        """Stop taking requests (the server stops accepting when none remain)."""
        self.server.unregister_provider(self)

    def kill(self) -> None:
        """Stop taking requests at once."""
        self.server.unregister_provider(self)

    def get_url_rule(self) -> Rule:
        """The werkzeug routing rule for this entrypoint."""
        return Rule(self.url, methods=self.methods, endpoint=self)

    def check_signature(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise ``IncorrectSignature`` unless the method takes these arguments.

        Whether arguments fit depends only on how many are positional and
        which names are given, and a rule always gives the same names: so
        each combination is checked once, not on every request.
        """
        key: tuple[int | str, ...] = (len(args), *kwargs)
        if key not in self._fitting_arguments:
            super().check_signature(args, kwargs)
            if len(self._fitting_arguments) >= 64:
                # A subclass may pass client-chosen names: stay bounded.
                self._fitting_arguments.clear()
            self._fitting_arguments.add(key)

    def get_entrypoint_parameters(
        self, request: Request
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """``(args, kwargs)`` for the service method: the request and URL values."""
        # set by the web server, as in Nameko; werkzeug's Request does not declare it
        return (request,), request.path_values  # type: ignore[attr-defined]

    def handle_request(self, request: Request) -> Response:
        """Run a worker for ``request`` and turn its outcome into a response."""
        try:
            # The hooks below are called only when a subclass overrides
            # them, or a test patched them on the instance: the defaults'
            # work is done inline (no call per request).
            handler_cls = type(self)
            patched = self.__dict__
            server = self.server
            context_data = (
                None if type(server).context_data_from_headers is _NO_CONTEXT_DATA
                and "context_data_from_headers" not in server.__dict__
                else server.context_data_from_headers(request))
            if (handler_cls.get_entrypoint_parameters is _DEFAULT_PARAMETERS
                    and "get_entrypoint_parameters" not in patched):
                # set by the web server, as in Nameko; werkzeug's Request does not declare it
                args: tuple[Any, ...] = (request,)
                kwargs: dict[str, Any] = request.path_values  # type: ignore[attr-defined]
            else:
                args, kwargs = self.get_entrypoint_parameters(request)
            contract = contracts.contract_of(self)
            if contract is not None:
                args, kwargs = contracts.http_arguments(contract, request, args, kwargs)
            container = self.container
            if getattr(container.spawn_worker, "__func__", None) is _SPAWN_WORKER:
                # The request's greenthread would only wait for the worker:
                # it switches to the worker directly (see run_worker_here).
                outcome = _Outcome()
                container.run_worker_here(  # type: ignore[attr-defined]  # a ServiceContainer
                    self, args, kwargs, context_data,
                    outcome if handler_cls.handle_result is _DEFAULT_HANDLE_RESULT
                    and "handle_result" not in patched
                    else partial(self.handle_result, outcome),
                    partial(_announce, request) if instrumentation.observers else None,
                )
                result = outcome.wait()
            else:
                # spawn_worker replaced (a subclass, entrypoint_waiter): through it.
                done = eventlet.event.Event()
                # spawn_worker checks the signature and raises at once on a
                # mismatch, before taking a worker slot.
                worker_ctx = container.spawn_worker(
                    self, args, kwargs,
                    # a dict, as before the inline default: an override may add to it
                    context_data={} if context_data is None else context_data,
                    handle_result=partial(self.handle_result, done),
                )
                if instrumentation.observers:
                    instrumentation.emit("worker_spawned", worker_ctx, request)
                result = done.wait()
            if contract is not None:
                result = contracts.http_result(contract, result)
            return self.response_from_result(result)
        except Exception as exc:  # noqa: BLE001 - every failure is answered (never a traceback)
            return self.response_from_exception(exc)

    def handle_result(self, done: Any, worker_ctx: WorkerContext, result: Any,
                      exc_info: ExcInfo | None) -> tuple[Any, ExcInfo | None]:
        """Hand the worker's outcome to the request (runs in the worker).

        ``done`` has an eventlet ``Event``'s ``send(result, exc_info)``.
        """
        done.send(result, exc_info)
        return result, exc_info

    def response_from_result(self, result: Any) -> Response:
        """Build the response for what the service method returned."""
        result_type = type(result)
        if result_type is str or result_type is bytes:  # the usual case, first
            return WholeResponse(result)
        if isinstance(result, Response):
            return result
        headers = None
        if isinstance(result, tuple):
            if len(result) == 3:
                status, headers, payload = result
            elif len(result) == 2:
                status, payload = result
            else:
                raise TypeError(
                    f"an HTTP entrypoint may return (status, body) or (status, headers, body); "
                    f"got a tuple of {len(result)} items"
                )
        else:
            status, payload = 200, result
        if not isinstance(payload, (str, bytes)):
            # As in Nameko: werkzeug would otherwise iterate a dict's keys or
            # send an empty body for None, and answer 200.
            raise TypeError(f"Payload must be a string. Got `{payload!r}`")
        return WholeResponse(payload, status=status, headers=headers)

    def response_from_exception(self, exc: BaseException) -> Response:
        """Build the error response for ``exc`` (never with a traceback)."""
        if isinstance(exc, contracts.ValidationError):
            return validation_response(exc)  # 422, the failing fields in JSON
        # Two checks: expected_exceptions may be a class or a tuple.
        expected = self.expected_exceptions or ()
        if isinstance(exc, _BAD_REQUESTS) or isinstance(exc, expected):  # noqa: SIM101
            status = 400
        elif isinstance(exc, HTTPException) and exc.code and 400 <= exc.code < 500:
            status = exc.code
        else:
            status = 500
        error = serialize(exc)
        return WholeResponse(f"Error: {error['exc_type']}: {error['value']}\n", status=status)


_NO_CONTEXT_DATA = WebServer.context_data_from_headers
_DEFAULT_PARAMETERS = HttpRequestHandler.get_entrypoint_parameters
_DEFAULT_HANDLE_RESULT = HttpRequestHandler.handle_result

http = HttpRequestHandler.decorator
