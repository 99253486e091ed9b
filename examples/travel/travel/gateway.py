"""The gateway: a JSON HTTP API in front of the airports and trips services.

=======  ==========================  ==========================================
method   path                        answer
=======  ==========================  ==========================================
POST     /airport                    ``{"airport": name}`` -> 201 ``{"id": ...}``
GET      /airport/<id>               ``{"id", "airport"}``
GET      /airport/<id>/stats         the airport with its departures, arrivals
                                     and trips counted so far
POST     /trip                       ``{"airport_from": id, "airport_to": id}``
                                     -> 201 ``{"id": ...}``
GET      /trip/<id>                  the trip, both airports resolved
GET      /health                     ``{"status": "ok"}`` once it and the services behind it answer
=======  ==========================  ==========================================

Errors are JSON too, ``{"error": <kind>, "message": <text>}``: 400 for a
body that is not JSON, lacks a field or names an unknown airport, 404 for an
unknown id, 503 when a service behind the gateway is not there or does not
answer in time, and 500 (revealing nothing) for anything unexpected.
"""

import json

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from nameko_like.exceptions import RpcConnectionError, RpcTimeout, UnknownService
from nameko_like.rpc import RpcProxy
from nameko_like.web.handlers import HttpRequestHandler

from travel.errors import EXPECTED, InvalidRequest, NotFound

#: Seconds the gateway waits for the airports or trips service to answer.
RPC_TIMEOUT = 10


def json_response(status, payload):
    return Response(json.dumps(payload), status=status, mimetype="application/json")


class JsonHandler(HttpRequestHandler):
    """``@http`` answering in JSON: results as they are, errors as described above.

    A method returns a JSON-able value, or ``(status, value)``.
    """

    def response_from_result(self, result):
        status, payload = result if isinstance(result, tuple) else (200, result)
        return json_response(status, payload)

    def response_from_exception(self, exc):
        if isinstance(exc, NotFound):
            status, kind, message = 404, "NOT_FOUND", str(exc)
        elif isinstance(exc, InvalidRequest):
            status, kind, message = 400, "BAD_REQUEST", str(exc)
        elif isinstance(exc, RpcTimeout):
            status, kind, message = 503, "UNAVAILABLE", "a service did not answer in time"
        elif isinstance(exc, (UnknownService, RpcConnectionError)):
            # not started yet, or the broker is away: worth retrying later
            status, kind, message = 503, "UNAVAILABLE", "a service is not available"
        elif isinstance(exc, HTTPException) and exc.code and exc.code < 500:
            status, kind, message = exc.code, exc.name.upper().replace(" ", "_"), exc.description
        else:
            # The container has logged the traceback; the client learns nothing.
            status, kind, message = 500, "INTERNAL_ERROR", "unexpected error"
        return json_response(status, {"error": kind, "message": message})


def http(method, url):
    """``@http`` with JSON answers; our own errors are logged without a traceback."""
    return JsonHandler.decorator(method, url, expected_exceptions=EXPECTED)


def read_json(request, *fields):
    """The request body as a dict holding a string for each of ``fields``."""
    try:
        body = json.loads(request.get_data(as_text=True))
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

    airports = RpcProxy("airports", timeout=RPC_TIMEOUT)
    trips = RpcProxy("trips", timeout=RPC_TIMEOUT)

    @http("GET", "/health")
    def health(self, request):
        # ready only when the services behind it answer too: a launcher or
        # load balancer waiting on this can then send real traffic at once
        self.airports.health()
        self.trips.health()
        return {"status": "ok"}

    @http("POST", "/airport")
    def create_airport(self, request):
        body = read_json(request, "airport")
        return 201, {"id": self.airports.create(body["airport"])}

    @http("GET", "/airport/<airport_id>")
    def get_airport(self, request, airport_id):
        return self.airports.get(airport_id)

    @http("GET", "/airport/<airport_id>/stats")
    def get_airport_stats(self, request, airport_id):
        return self.airports.stats(airport_id)

    @http("POST", "/trip")
    def create_trip(self, request):
        body = read_json(request, "airport_from", "airport_to")
        trip_id = self.trips.create(body["airport_from"], body["airport_to"])
        return 201, {"id": trip_id}

    @http("GET", "/trip/<trip_id>")
    def get_trip(self, request, trip_id):
        trip = self.trips.get(trip_id)
        # Both look-ups in flight at once: call_async returns at once and
        # result() waits for the answer.
        from_reply = self.airports.get.call_async(trip["airport_from"])
        to_reply = self.airports.get.call_async(trip["airport_to"])
        airport_from, airport_to = from_reply.result(), to_reply.result()
        return {"id": trip["id"], "airport_from": airport_from, "airport_to": airport_to}
