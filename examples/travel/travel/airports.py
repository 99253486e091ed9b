"""The airports service: stores airports and counts the trips of each.

RPC methods, as in the Nameko tutorial: ``create(airport)`` returns the new
airport's id and ``get(airport_id)`` its name; beyond the tutorial,
``stats(airport_id)`` counts the trips from and to it. It listens for the
``trip_created`` events of the trips service to count them.
"""

from nameko_like.contracts import validated
from nameko_like.events import event_handler
from nameko_like.rpc import rpc
from travel.contracts import AirportStats, TripCreated
from travel.errors import EXPECTED, InvalidRequest, NotFound
from travel.storage import Storage

#: The longest airport name accepted, in characters.
MAX_NAME_LENGTH = 100


@validated
class AirportsService:
    name = "airports"

    store = Storage("airports")

    @rpc(expected_exceptions=EXPECTED)
    def create(self, airport: str) -> str:
        """Store a new airport named ``airport``; return its id."""
        name = airport.strip() if isinstance(airport, str) else ""
        if not name:
            raise InvalidRequest("an airport needs a non-empty name")
        if len(name) > MAX_NAME_LENGTH:
            raise InvalidRequest(
                f"an airport name has at most {MAX_NAME_LENGTH} characters"
            )
        return self.store.add({"airport": name})

    @rpc(expected_exceptions=EXPECTED)
    def get(self, airport_id: str) -> str:
        """The airport's name; NotFound for an unknown id."""
        record = self.store.get(airport_id)
        if record is None:
            raise NotFound(f"no airport with id {airport_id}")
        return record["airport"]

    @rpc(expected_exceptions=EXPECTED)
    def stats(self, airport_id: str) -> AirportStats:
        """How many trips leave from and arrive at the airport."""
        airport = self.get(airport_id)
        counters = self.store.counters(airport_id)
        departures = counters.get("departures", 0)
        arrivals = counters.get("arrivals", 0)
        return {
            "id": airport_id,
            "airport": airport,
            "departures": departures,
            "arrivals": arrivals,
            "trips": departures + arrivals,
        }

    @rpc
    def health(self) -> str:
        """Answer the healthcheck; fails if storage is unreachable."""
        self.store.get("-")
        return "ok"

    @event_handler("trips", "trip_created")
    def count_trip(self, trip: TripCreated) -> None:
        """Count a new trip for both its airports.

        Events are delivered at least once: a trip whose event is
        redelivered (after a crash between counting and acknowledging) is
        counted twice. Good enough for statistics; exact counts would
        remember trip ids.
        """
        self.store.increment(trip["from"], "departures")
        self.store.increment(trip["to"], "arrivals")
