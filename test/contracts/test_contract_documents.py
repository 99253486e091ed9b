"""Generated AsyncAPI 3.0 and OpenAPI 3.1 documents, checked against the official schemas."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
from contract_services import Bookings, OneMethod, Unvalidated
from openapi_spec_validator import validate as validate_openapi
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from nameko_like.contracts.documents import build_document, render

ASYNCAPI_SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "asyncapi-3.0.0.schema.json").read_text())
CONFIG = {"AMQP_URI": "amqp://guest:secret@rabbit.example:5673/shop"}


def asyncapi_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(ASYNCAPI_SCHEMA)
    return [f"{list(error.path)}: {error.message}" for error in validator.iter_errors(document)]


@pytest.fixture(scope="module")
def asyncapi() -> dict:
    return build_document([Bookings, OneMethod, Unvalidated], "asyncapi", CONFIG)


def test_asyncapi_document_is_valid(asyncapi):
    assert asyncapi_errors(asyncapi) == []
    # the validator is live: a broken document is reported
    broken = copy.deepcopy(asyncapi)
    broken["operations"]["bookings.book"]["action"] = "consume"
    broken["channels"]["rpc.bookings.book"]["bindings"]["amqp"]["is"] = "exchange-ish"
    assert len(asyncapi_errors(broken)) >= 1


def test_asyncapi_describes_the_wire(asyncapi):
    server = asyncapi["servers"]["broker"]
    assert server == {"host": "rabbit.example:5673", "protocol": "amqp",
                      "protocolVersion": "0.9.1", "pathname": "/shop",
                      "description": "RabbitMQ, virtual host 'shop'"}
    assert "secret" not in json.dumps(asyncapi)
    rpc_channel = asyncapi["channels"]["rpc.bookings.book"]
    assert rpc_channel["address"] == "bookings.book"
    assert rpc_channel["bindings"]["amqp"]["exchange"]["name"] == "nameko-rpc"
    assert rpc_channel["description"] == "Consumed from queue rpc-bookings"
    request = asyncapi["components"]["messages"]["bookings.book.request"]["payload"]
    journey, priority = request["properties"]["args"]["items"]
    assert journey["$ref"] == "#/components/schemas/Journey"
    assert priority == {"type": "integer", "title": "priority", "default": 0}
    assert set(asyncapi["components"]["schemas"]) >= {"Journey", "Leg"}
    reply = asyncapi["components"]["messages"]["bookings.book.reply"]["payload"]
    assert reply["properties"]["result"] == {"$ref": "#/components/schemas/Booked"}
    assert asyncapi["components"]["schemas"]["Booked"]["properties"]["reference"] == {
        "title": "Reference", "type": "string"}
    operation = asyncapi["operations"]["bookings.book"]
    assert operation["action"] == "receive"
    assert operation["summary"] == "Book a journey; returns its reference."
    assert operation["reply"]["address"]["location"] == "$message.header#/reply_to"

    event = asyncapi["channels"]["event.orders.placed"]
    assert event["address"] == "placed"
    assert event["bindings"]["amqp"]["exchange"]["name"] == "orders.events"
    payload = asyncapi["components"]["messages"]["orders.placed"]["payload"]
    assert payload["$ref"] == "#/components/schemas/OrderPlaced"
    assert asyncapi["components"]["schemas"]["OrderPlaced"]["required"] == ["order_id", "item"]
    queue = asyncapi["channels"]["queue.contract-orders"]
    assert queue["bindings"]["amqp"]["queue"]["name"] == "contract-orders"
    assert {"bookings.on_placed", "bookings.on_order", "one_method.checked",
            "unvalidated.book"} <= set(asyncapi["operations"])
    # HTTP routes are OpenAPI's business
    assert not any("journey" in key for key in asyncapi["operations"])


def test_openapi_document_is_valid_and_describes_the_routes():
    document = build_document([Bookings], "openapi")
    validate_openapi(document)
    post = document["paths"]["/journeys/{group}"]["post"]
    assert post["operationId"] == "bookings.post_journey"
    assert post["parameters"] == [{"name": "group", "in": "path", "required": True,
                                   "schema": {"type": "integer", "title": "group"}}]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Journey", "title": "journey"}
    assert post["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Booked"}
    assert "422" in post["responses"]
    get = document["paths"]["/legs/{origin}/{minutes}"]["get"]
    assert get["responses"]["200"]["content"] == {"text/plain": {"schema": {"type": "string"}}}
    assert "requestBody" not in get
    broken = copy.deepcopy(document)
    broken["paths"]["/journeys/{group}"]["post"]["parameters"][0]["in"] = "body"
    with pytest.raises(OpenAPIValidationError):
        validate_openapi(broken)


def test_documents_render_as_json_or_yaml():
    document = build_document([OneMethod], "openapi")
    assert json.loads(render(document)) == document
    assert render(document, "api.yaml").startswith("openapi: 3.1.0\n")
    with pytest.raises(ValueError, match="choose one of asyncapi, openapi"):
        build_document([OneMethod], "swagger")
