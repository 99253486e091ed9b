"""The trips service: stores trips between two known airports.

RPC methods, as in the Nameko tutorial: ``create(airport_from,
airport_to)`` returns the new trip's id and ``get(trip_id)`` the trip,
``{"from": airport id, "to": airport id}``. Beyond the tutorial, both
airports must exist, and each new trip is announced with a
``trip_created`` event, which the airports service counts.
"""

from nameko_like.contracts import validated
from nameko_like.events import EventDispatcher
from nameko_like.rpc import RpcProxy, rpc
from travel.airports import AirportsService
from travel.contracts import Trip
from travel.errors import EXPECTED, InvalidRequest, NotFound, UnknownAirport
from travel.storage import Storage


@validated
class TripsService:
    name = "trips"

    store = Storage("trips")
    # typed: self.airports has AirportsService's signatures
    airports = RpcProxy(AirportsService, timeout=10)
    dispatch = EventDispatcher()

    @rpc(expected_exceptions=EXPECTED)
    def create(self, airport_from: str, airport_to: str) -> str:
        """Store a trip from ``airport_from`` to ``airport_to`` (airport ids).

        Raises UnknownAirport if either airport does not exist.
        """
        for airport_id in (airport_from, airport_to):
            if not isinstance(airport_id, str):
                raise InvalidRequest("airport ids are strings")
        if airport_from == airport_to:
            raise InvalidRequest("a trip goes between two different airports")
        for airport_id in (airport_from, airport_to):
            try:
                self.airports.get(airport_id)
            except NotFound:
                message = f"no airport with id {airport_id}"
                raise UnknownAirport(message) from None

        trip = {"from": airport_from, "to": airport_to}
        trip_id = self.store.add(trip)
        # Returns once the broker has the event: not lost if we crash now.
        self.dispatch("trip_created", {"trip_id": trip_id, **trip})
        return trip_id

    @rpc(expected_exceptions=EXPECTED)
    def get(self, trip_id: str) -> Trip:
        """``{"from": id, "to": id}``; NotFound for an unknown id."""
        record = self.store.get(trip_id)
        if record is None:
            raise NotFound(f"no trip with id {trip_id}")
        return record

    @rpc
    def health(self) -> str:
        """Answer the healthcheck; fails if storage is unreachable."""
        self.store.get("-")
        return "ok"
