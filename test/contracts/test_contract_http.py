"""@http URL arguments and JSON bodies validated: invalid requests get 422 in JSON."""

from __future__ import annotations

import json

import pytest
from contract_services import Bookings, received


@pytest.fixture(autouse=True)
def _clear_received():
    received.clear()


@pytest.fixture
def bookings(container_factory, web_config):
    container = container_factory(Bookings, web_config)
    container.start()
    return container


def test_invalid_bodies_get_422_naming_the_fields(bookings, web_session):
    response = web_session.post("/journeys/7", json={"traveller": "", "legs": [{}]})
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "ValidationError"
    assert [error["loc"] for error in body["errors"]] == [
        "body.traveller", "body.legs.0.origin", "body.legs.0.destination"]
    assert "body.traveller: String should have at least 1 character" in body["message"]
    assert received == []


@pytest.mark.parametrize("data", ["not json", "", b"\xff\xfe", "[1]"])
def test_a_body_that_is_not_the_model_gets_422(bookings, web_session, data):
    response = web_session.post("/journeys/7", data=data)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["loc"] == "body"
    assert error["type"] in ("json_invalid", "model_type")
    assert received == []


def test_a_valid_body_reaches_the_method_converted(bookings, web_session):
    response = web_session.post("/journeys/7", json={
        "traveller": "bo", "legs": [{"origin": "A", "destination": "B", "minutes": "30"}]})
    assert response.status_code == 200
    # the annotated result (a TypedDict) is answered as JSON
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"reference": "7/bo", "legs": 1}
    [(kind, group, journey)] = received
    assert (kind, group) == ("post", 7)
    assert journey.legs[0].minutes == 30


def test_url_arguments_are_converted_and_checked(bookings, web_session):
    response = web_session.get("/legs/LHR/45")
    assert response.status_code == 200
    # a str result is sent as it is
    assert response.headers["Content-Type"].startswith("text/plain")
    assert json.loads(response.text) == {"origin": "LHR", "minutes": 45}
    response = web_session.get("/legs/LHR/soon")
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["errors"]] == ["minutes"]
