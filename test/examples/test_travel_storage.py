"""The travel example's Storage provider and its services, tested in-process."""

import json
import uuid
from unittest.mock import call

import pytest
import redis
from travel.airports import MAX_NAME_LENGTH, AirportsService
from travel.errors import InvalidRequest, NotFound, UnknownAirport
from travel.storage import RedisBackend, SqliteBackend, Storage, Store, open_backend
from travel.trips import TripsService

from nameko_like._eventlet import eventlet
from nameko_like.testing.services import dummy, entrypoint_hook, worker_factory


@pytest.fixture(params=["sqlite", "redis"])
def backend(request, tmp_path):
    if request.param == "sqlite":
        backend = SqliteBackend(str(tmp_path / "travel.sqlite"))
    else:
        config = request.getfixturevalue("redis_config")
        backend = open_backend(config)
        assert isinstance(backend, RedisBackend)
    yield backend
    backend.close()


def test_records_round_trip(backend):
    store = Store(backend, "airports")
    first = store.add({"airport": "LHR"})
    second = store.add({"airport": "JFK"})
    assert first != second
    # uuid4().hex, as in the Nameko tutorial
    assert uuid.UUID(hex=first).version == 4 and first == uuid.UUID(first).hex
    assert store.get(first) == {"airport": "LHR"}
    assert store.get(second) == {"airport": "JFK"}
    assert store.get("missing") is None


def test_kinds_are_kept_apart(backend):
    airports, trips = Store(backend, "airports"), Store(backend, "trips")
    airport_id = airports.add({"airport": "LHR"})
    assert trips.get(airport_id) is None


def test_counters(backend):
    store = Store(backend, "airports")
    assert store.counters("a") == {}
    assert store.increment("a", "departures") == 1
    assert store.increment("a", "departures", by=2) == 3
    assert store.increment("a", "arrivals") == 1
    assert store.counters("a") == {"departures": 3, "arrivals": 1}
    assert store.counters("b") == {}


def test_concurrent_increments_are_all_counted(backend):
    store = Store(backend, "airports")
    pool = eventlet.GreenPool(20)
    for _ in range(200):
        pool.spawn_n(store.increment, "busy", "departures")
    pool.waitall()
    assert store.counters("busy") == {"departures": 200}


def test_sqlite_file_is_shared_by_connections(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    one, two = SqliteBackend(path), SqliteBackend(path)
    try:
        record_id = Store(one, "trips").add({"airport_from": "a", "airport_to": "b"})
        Store(one, "airports").increment("a", "departures")
        Store(two, "airports").increment("a", "departures")
        assert Store(two, "trips").get(record_id) == {"airport_from": "a", "airport_to": "b"}
        assert Store(one, "airports").counters("a") == {"departures": 2}
    finally:
        one.close()
        two.close()


def test_redis_keys_carry_the_prefix(redis_config):
    backend = open_backend(redis_config)
    try:
        record_id = Store(backend, "airports").add({"airport": "LHR"})
        client = redis.Redis.from_url(redis_config["REDIS_URI"], decode_responses=True)
        key = f"{redis_config['REDIS_KEY_PREFIX']}airports:{record_id}"
        assert json.loads(client.get(key)) == {"airport": "LHR"}
        client.close()
    finally:
        backend.close()


def test_sqlite_is_the_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    backend = open_backend({"REDIS_URI": None})
    try:
        assert isinstance(backend, SqliteBackend)
        assert (tmp_path / "travel.sqlite").exists()
    finally:
        backend.close()


class Keeper:
    name = "keeper"
    store = Storage("things")

    @dummy
    def keep(self, thing):
        return self.store.add(thing)

    @dummy
    def fetch(self, thing_id):
        return self.store.get(thing_id)


def test_provider_in_a_container(container_factory, tmp_path):
    path = tmp_path / "keeper.sqlite"
    container = container_factory(Keeper, {"TRAVEL_DB_PATH": str(path)})
    container.start()
    with entrypoint_hook(container, "keep") as keep, entrypoint_hook(container, "fetch") as fetch:
        thing_id = keep({"colour": "blue"})
        assert fetch(thing_id) == {"colour": "blue"}
    provider = next(iter(container.dependencies))
    assert provider.backend is not None
    container.stop()
    assert provider.backend is None
    assert path.exists()


# --- the services, unit-tested with worker_factory ------------------------------


@pytest.fixture
def sqlite_store(tmp_path):
    backend = SqliteBackend(str(tmp_path / "unit.sqlite"))
    yield lambda kind: Store(backend, kind)
    backend.close()


def test_airports(sqlite_store):
    service = worker_factory(AirportsService, store=sqlite_store("airports"))
    airport_id = service.create("  Heathrow ")
    assert service.get(airport_id) == "Heathrow"
    with pytest.raises(NotFound):
        service.get("nope")
    with pytest.raises(InvalidRequest):
        service.create("   ")
    with pytest.raises(InvalidRequest):
        service.create(42)
    assert service.get(service.create("x" * MAX_NAME_LENGTH)) == "x" * MAX_NAME_LENGTH
    with pytest.raises(InvalidRequest, match=str(MAX_NAME_LENGTH)):
        service.create("x" * (MAX_NAME_LENGTH + 1))


def test_airports_count_trips(sqlite_store):
    service = worker_factory(AirportsService, store=sqlite_store("airports"))
    lhr, jfk = service.create("LHR"), service.create("JFK")
    service.count_trip({"trip_id": "t1", "from": lhr, "to": jfk})
    service.count_trip({"trip_id": "t2", "from": lhr, "to": jfk})
    assert service.stats(lhr) == {"id": lhr, "airport": "LHR", "departures": 2, "arrivals": 0,
                                  "trips": 2}
    assert service.stats(jfk)["arrivals"] == 2
    with pytest.raises(NotFound):
        service.stats("nope")


def test_trips(sqlite_store):
    service = worker_factory(TripsService, store=sqlite_store("trips"))
    service.airports.get.side_effect = lambda airport_id: airport_id.upper()
    trip_id = service.create("lhr", "jfk")
    assert service.get(trip_id) == {"from": "lhr", "to": "jfk"}
    assert service.airports.get.call_args_list == [call("lhr"), call("jfk")]
    service.dispatch.assert_called_once_with(
        "trip_created", {"trip_id": trip_id, "from": "lhr", "to": "jfk"})


def test_trips_refuse_unknown_or_equal_airports(sqlite_store):
    service = worker_factory(TripsService, store=sqlite_store("trips"))
    service.airports.get.side_effect = NotFound("no airport with id x")
    with pytest.raises(UnknownAirport):
        service.create("x", "y")
    with pytest.raises(InvalidRequest):
        service.create("x", "x")
    with pytest.raises(InvalidRequest):
        service.create(1, "x")
    with pytest.raises(NotFound):
        service.get("nope")
    assert not service.dispatch.called
