"""The airports service: stores airports and counts the trips of each.

RPC methods: ``create(airport)``, ``get(airport_id)``, ``stats(airport_id)``.
It also listens for the ``trip_created`` events of the trips service and
counts, per airport, the trips that leave from it and arrive at it.
"""

from nameko_like.events import event_handler
from nameko_like.rpc import rpc

from travel.errors import EXPECTED, InvalidRequest, NotFound
from travel.storage import Storage


class AirportsService:
    name = "airports"

    store = Storage("airports")

    @rpc(expected_exceptions=EXPECTED)
    def create(self, airport):
        """Store a new airport named ``airport``; return its id."""
        if not isinstance(airport, str) or not airport.strip():
            raise InvalidRequest("an airport needs a non-empty name")
        return self.store.add({"airport": airport.strip()})

    @rpc(expected_exceptions=EXPECTED)
    def get(self, airport_id):
        """``{"id": ..., "airport": ...}``; NotFound for an unknown id."""
        record = self.store.get(airport_id)
        if record is None:
            raise NotFound(f"no airport with id {airport_id}")
        return {"id": airport_id, **record}

    @rpc(expected_exceptions=EXPECTED)
    def stats(self, airport_id):
        """How many trips leave from and arrive at the airport."""
        airport = self.get(airport_id)
        counters = self.store.counters(airport_id)
        departures = counters.get("departures", 0)
        arrivals = counters.get("arrivals", 0)
        return {
            **airport,
            "departures": departures,
            "arrivals": arrivals,
            "trips": departures + arrivals,
        }

    @rpc
    def health(self):
        """Answer the container's healthcheck; fails if storage is unreachable."""
        self.store.get("-")
        return "ok"

    @event_handler("trips", "trip_created")
    def count_trip(self, trip):
        """Count a new trip for both its airports.

        Events are delivered at least once: a trip whose event is redelivered
        (after a crash between counting and acknowledging) is counted twice.
        Good enough for statistics; exact counts would remember trip ids.
        """
        self.store.increment(trip["airport_from"], "departures")
        self.store.increment(trip["airport_to"], "arrivals")
