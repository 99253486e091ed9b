"""The gateway: the HTTP API in front of the airports and trips services.

It answers the requests of the Nameko travel tutorial as the tutorial
shows them:

* ``POST /airport`` ``{"airport": name}``: 200, the new airport's id as
  plain text (``uuid4().hex``, 32 hex digits);
* ``GET /airport/<id>``: ``{"airport": name}``;
* ``POST /trip`` ``{"airport_from": id, "airport_to": id}``: 200, the new
  trip's id as plain text;
* ``GET /trip/<id>``: ``{"trip": {"from": id, "to": id}}``.

and two requests of its own:

* ``GET /airport/<id>/stats``: the airport with the trips from and to it
  counted so far;
* ``GET /health``: ``{"status": "ok"}`` once the services behind it answer.

Errors are JSON, ``{"error": <kind>, "message": <text>}``: 400 for a body
that is not a JSON object, lacks a field, names an unknown airport or too
long a name; 404 for an unknown id or URL; 405 for a method a URL does not
take; 413 for a body over ``MAX_BODY_SIZE``; 503 when a service behind the
gateway is not there or does not answer in time; 500 (revealing nothing)
for anything unexpected.
"""

import json
from typing import Any

from werkzeug.exceptions import (
    HTTPException,
    MethodNotAllowed,
    RequestEntityTooLarge,
)
from werkzeug.exceptions import NotFound as UnknownUrl
from werkzeug.wrappers import Request, Response

from nameko_like.exceptions import (
    RpcConnectionError,
    RpcTimeout,
    UnknownService,
)
from nameko_like.rpc import RpcProxy
from nameko_like.web.handlers import HttpRequestHandler
from nameko_like.web.server import WebServer, WsgiApp
from travel.contracts import AirportOut, AirportStats, Health, TripOut
from travel.errors import EXPECTED, InvalidRequest, NotFound

#: Seconds the gateway waits for the airports or trips service to answer.
RPC_TIMEOUT = 10
#: The largest request body the gateway reads, in bytes: a name and two
#: ids need far less.
MAX_BODY_SIZE = 16 * 1024


def json_response(status: int, payload: Any, headers: Any = None) -> Response:
    """``payload`` as an ``application/json`` response."""
    return Response(
        json.dumps(payload),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def error_response(
    status: int, kind: str, message: str, headers: Any = None
) -> Response:
    """The gateway's error body: ``{"error": kind, "message": message}``."""
    return json_response(status, {"error": kind, "message": message}, headers)


def http_error_response(exc: HTTPException) -> Response:
    """A werkzeug HTTP error (404, 405, 413...) as a JSON error."""
    kind = exc.name.upper().replace(" ", "_")
    # Keep the error's own headers (a 405's Allow), not its HTML type.
    headers = [
        (name, value)
        for name, value in exc.get_headers()
        if name.lower() != "content-type"
    ]
    return error_response(exc.code, kind, exc.description, headers)


class UnroutedRequest:
    """Stands in for an entrypoint when no entrypoint takes a request."""

    def __init__(self, exc: HTTPException) -> None:
        self.exc = exc

    def handle_request(self, request: Request) -> Response:
        """The routing error (404 or 405), in JSON."""
        return http_error_response(self.exc)


class JsonRoutingApp(WsgiApp):
    """Routes requests as usual, but answers routing errors in JSON.

    The stock application answers a URL that no entrypoint serves, or a
    method that it does not take, with werkzeug's HTML error page.
    """

    def match(self, path: str, method: str) -> tuple[Any, dict]:
        """The entrypoint for a request, or an :class:`UnroutedRequest`."""
        try:
            return super().match(path, method)
        except (UnknownUrl, MethodNotAllowed) as exc:
            return UnroutedRequest(exc), {}


class JsonWebServer(WebServer):
    """The container's web server, routing with :class:`JsonRoutingApp`."""

    def get_wsgi_app(self) -> JsonRoutingApp:
        """The WSGI application, with JSON routing errors."""
        return JsonRoutingApp(self)


class JsonHandler(HttpRequestHandler):
    """``@http`` answering errors in JSON, as described above.

    A method returns a string, sent as text (the ids, as the tutorial
    does), or another JSON-able value, sent as JSON.
    """

    server = JsonWebServer()

    def response_from_result(self, result: Any) -> Response:
        """Text for a string, JSON for anything else; status 200."""
        if isinstance(result, Response):
            return result
        if isinstance(result, str):
            return Response(result)  # text/plain; charset=utf-8
        return json_response(200, result)

    def response_from_exception(self, exc: BaseException) -> Response:
        """The JSON error for ``exc``."""
        if isinstance(exc, NotFound):
            return error_response(404, "NOT_FOUND", str(exc))
        if isinstance(exc, InvalidRequest):
            return error_response(400, "BAD_REQUEST", str(exc))
        if isinstance(exc, RpcTimeout):
            message = "a service did not answer in time"
            return error_response(503, "UNAVAILABLE", message)
        if isinstance(exc, (UnknownService, RpcConnectionError)):
            # not started yet, or the broker is away: worth retrying later
            message = "a service is not available"
            return error_response(503, "UNAVAILABLE", message)
        if isinstance(exc, HTTPException) and exc.code and exc.code < 500:
            return http_error_response(exc)
        # The container has logged the traceback; the client learns nothing.
        return error_response(500, "INTERNAL_ERROR", "unexpected error")


def http(method: str, url: str) -> Any:
    """``@http`` with JSON errors; the expected ones logged briefly."""
    return JsonHandler.decorator(
        method, url, expected_exceptions=(*EXPECTED, HTTPException)
    )


def read_json(request: Request, *fields: str) -> dict[str, Any]:
    """The request body as a dict holding a string for each of ``fields``."""
    data = request.get_data()
    if len(data) > MAX_BODY_SIZE:
        raise RequestEntityTooLarge(
            f"the body may hold at most {MAX_BODY_SIZE} bytes"
        )
    try:
        body = json.loads(data)
    except ValueError:
        raise InvalidRequest("the body must be JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    missing = [field for field in fields if field not in body]
    if missing:
        raise InvalidRequest(f"missing field(s): {', '.join(missing)}")
    for field in fields:
        if not isinstance(body[field], str):
            raise InvalidRequest(f"{field} must be a string")
    return body


class GatewayService:
    name = "gateway"

    airports_rpc = RpcProxy("airports", timeout=RPC_TIMEOUT)
    trips_rpc = RpcProxy("trips", timeout=RPC_TIMEOUT)

    @http("GET", "/airport/<string:airport_id>")
    def get_airport(self, request: Request, airport_id: str) -> AirportOut:
        airport = self.airports_rpc.get(airport_id)
        return {"airport": airport}

    @http("POST", "/airport")
    def post_airport(self, request: Request) -> str:
        data = read_json(request, "airport")
        airport_id = self.airports_rpc.create(data["airport"])
        return airport_id

    @http("GET", "/trip/<string:trip_id>")
    def get_trip(self, request: Request, trip_id: str) -> TripOut:
        trip = self.trips_rpc.get(trip_id)
        return {"trip": trip}

    @http("POST", "/trip")
    def post_trip(self, request: Request) -> str:
        data = read_json(request, "airport_from", "airport_to")
        trip_id = self.trips_rpc.create(
            data["airport_from"], data["airport_to"]
        )
        return trip_id

    @http("GET", "/airport/<string:airport_id>/stats")
    def get_airport_stats(
        self, request: Request, airport_id: str
    ) -> AirportStats:
        return self.airports_rpc.stats(airport_id)

    @http("GET", "/health")
    def health(self, request: Request) -> Health:
        # Ready only when the services behind it answer too: whoever waits
        # on this can then send real traffic at once. Both calls are in
        # flight together: call_async returns at once, result() waits.
        airports = self.airports_rpc.health.call_async()
        trips = self.trips_rpc.health.call_async()
        airports.result()
        trips.result()
        return {"status": "ok"}
