"""The travel example's contracts: its documents, generated and checked against the
official AsyncAPI 3.0 and OpenAPI 3.1 schemas, and its validated services."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi

from nameko_like.contracts import ValidationError
from nameko_like.contracts.documents import build_document
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.services import entrypoint_waiter

ASYNCAPI_SCHEMA = Path(__file__).resolve().parents[1] / "contracts" / "data" / (
    "asyncapi-3.0.0.schema.json")


@pytest.fixture(scope="module")
def services():
    from travel.airports import AirportsService
    from travel.gateway import GatewayService
    from travel.trips import TripsService

    return AirportsService, TripsService, GatewayService


def test_travel_asyncapi_document(services):
    document = build_document(services, "asyncapi",
                              {"AMQP_URI": "amqp://guest:guest@rabbitmq:5672/"})
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    assert list(jsonschema.Draft7Validator(schema).iter_errors(document)) == []
    assert set(document["operations"]) == {
        "airports.create", "airports.get", "airports.stats", "airports.health",
        "airports.count_trip", "trips.create", "trips.get", "trips.health"}
    event = document["channels"]["event.trips.trip_created"]
    assert event["bindings"]["amqp"]["exchange"]["name"] == "trips.events"
    created = document["components"]["schemas"]["TripCreated"]
    assert created["required"] == ["trip_id", "from", "to"]
    reply = document["components"]["messages"]["trips.get.reply"]["payload"]
    assert reply["properties"]["result"] == {"$ref": "#/components/schemas/Trip"}


def test_travel_openapi_document(services):
    document = build_document(services, "openapi")
    validate_openapi(document)
    assert set(document["paths"]) == {
        "/airport/{airport_id}", "/airport", "/trip/{trip_id}", "/trip",
        "/airport/{airport_id}/stats", "/health"}
    stats = document["paths"]["/airport/{airport_id}/stats"]["get"]
    assert stats["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AirportStats"}
    assert document["components"]["schemas"]["TripOut"]["properties"]["trip"] == {
        "$ref": "#/components/schemas/Trip"}


def test_travel_services_reject_bad_payloads(services, container_factory, rabbit_config,
                                             take_messages, tmp_path):
    airports_cls, trips_cls, _ = services
    config = dict(rabbit_config, TRAVEL_DB_PATH=str(tmp_path / "travel.sqlite"))
    airports = container_factory(airports_cls, config)
    airports.start()
    container_factory(trips_cls, config).start()
    with ClusterRpcProxy(config, timeout=10) as cluster:
        with pytest.raises(ValidationError) as caught:
            cluster.airports.create(7)
        assert caught.value.locations == ["airport"]
        lhr = cluster.airports.create("LHR")
        jfk = cluster.airports.create("JFK")
        with entrypoint_waiter(airports, "count_trip", timeout=10):
            trip = cluster.trips.create(lhr, jfk)
        assert cluster.trips.get(trip) == {"from": lhr, "to": jfk}
        assert cluster.airports.stats(lhr)["departures"] == 1
    from nameko_like.standalone.events import event_dispatcher

    event_dispatcher(config)("trips", "trip_created", {"trip_id": "t", "from": lhr})
    [message] = take_messages(config, "airports.dead-letter", timeout=5)
    assert message.headers["x-dead-letter-reason"] == "ValidationError: trip.to: Field required"
