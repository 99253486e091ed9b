"""The payloads the travel services exchange, as types.

The airports and trips services are ``@validated``: their RPC arguments
and the ``trip_created`` event are checked against these types before a
method runs, and ``nameko_like docs`` describes them in the AsyncAPI and
OpenAPI documents. ``TypedDict`` comes from typing_extensions: pydantic
needs that one before Python 3.12.
"""

from typing_extensions import TypedDict

#: A stored trip: ``{"from": airport id, "to": airport id}`` ("from" is a
#: keyword, hence the functional form).
Trip = TypedDict("Trip", {"from": str, "to": str})

#: The ``trip_created`` event: the new trip's id and its airports.
TripCreated = TypedDict("TripCreated", {"trip_id": str, "from": str, "to": str})


class AirportStats(TypedDict):
    """An airport with the trips counted from and to it."""

    id: str
    airport: str
    departures: int
    arrivals: int
    trips: int


class AirportOut(TypedDict):
    """``GET /airport/<id>``: the airport's name."""

    airport: str


class TripOut(TypedDict):
    """``GET /trip/<id>``: the trip."""

    trip: Trip


class Health(TypedDict):
    """``GET /health``."""

    status: str
