"""The travel example: airports, trips and an HTTP gateway in front of them.

Run it from ``examples/travel`` (see its README.md):

* ``travel.airports``: stores airports; counts the trips from and to each;
* ``travel.trips``: stores trips between two airports and announces each new
  one with a ``trip_created`` event;
* ``travel.gateway``: the JSON HTTP API, calling the other two over RPC;
* ``travel.storage``: the ``Storage`` dependency provider both stores use;
* ``travel.errors``: the errors that travel between them;
* ``travel.telemetry``: where spans go when tracing is on (set up here, on
  import, before any service starts).
"""

from travel import telemetry

telemetry.setup()
