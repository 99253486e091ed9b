"""The JSON errors example of the docs, run for real."""

import importlib.util
import pathlib

import pytest

EXAMPLE = pathlib.Path(__file__).parents[2] / "docs" / "examples" / "http_json_errors.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("http_json_errors", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def inventory(example, container_factory, web_config):
    container = container_factory(example.Inventory, web_config)
    container.start()
    return container


def test_results_are_json(inventory, web_session):
    response = web_session.get("/items/apple")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"name": "apple", "count": 3}


def test_tuples_still_work(inventory, web_session):
    response = web_session.post("/items/pear", json=5)
    assert response.status_code == 201
    assert response.json() == {"name": "pear", "count": 5}


def test_expected_errors_are_json_with_their_status(inventory, web_session):
    response = web_session.get("/items/kiwi")
    assert response.status_code == 404
    assert response.json() == {"error": "NotFound", "message": "no item named kiwi"}
    response = web_session.post("/items/pear", data="lots")
    assert response.status_code == 400
    assert response.json()["error"] == "HttpError"


def test_unexpected_errors_reveal_nothing(inventory, web_session):
    response = web_session.get("/broken")
    assert response.status_code == 500
    assert response.json() == {"error": "InternalError", "message": "something went wrong"}
    assert "hunter2" not in response.text
