"""docs/contracts.rst: its example, run for real, and the commands it shows."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nameko_like.contracts import ValidationError
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.services import entrypoint_hook, entrypoint_waiter

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "docs" / "examples"
PAGE = Path(__file__).resolve().parents[2] / "docs" / "contracts.rst"


def test_contracts_example(container_factory, rabbit_config, take_messages, web_config,
                           web_session):
    from contracts_bookings import BookingService, Mailer, TravelAgent

    Mailer.sent.clear()
    bookings = container_factory(BookingService, dict(rabbit_config, **web_config))
    mailer = container_factory(Mailer, rabbit_config)
    agent = container_factory(TravelAgent, rabbit_config)
    for container in (bookings, mailer, agent):
        container.start()
    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        with entrypoint_waiter(mailer, "on_booked", timeout=10):
            booked = cluster.bookings.book(
                {"traveller": "ada", "legs": [{"origin": "LHR", "destination": "JFK"}]})
        assert booked == {"reference": "ada-1", "legs": 1}
        assert Mailer.sent == ["ada-1"]
        with pytest.raises(ValidationError) as caught:
            cluster.bookings.book({"traveller": "", "legs": [{"origin": "LHR"}]})
        assert caught.value.locations == ["journey.traveller", "journey.legs.0.destination"]
    with entrypoint_hook(agent, "book_for") as book_for:
        assert book_for("bo") == {"reference": "bo-1", "legs": 1}
    response = web_session.post("/bookings/3", json={"traveller": "cy", "legs": []})
    assert response.json() == {"reference": "cy-0", "legs": 0}
    response = web_session.post("/bookings/3", json={"legs": "none"})
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["errors"]] == [
        "body.traveller", "body.legs"]
    event_dispatcher(rabbit_config)("bookings", "booked", {"reference": 7})
    [message] = take_messages(rabbit_config, "mailer.dead-letter", timeout=5)
    assert message.headers["x-dead-letter-reason"].startswith(
        "ValidationError: booking.reference: Input should be a valid string")


def test_the_docs_command_shown_on_the_page():
    assert "nameko_like docs contracts_bookings --format openapi" in PAGE.read_text()
    done = subprocess.run(
        [sys.executable, "-m", "nameko_like", "docs", "contracts_bookings", "--format",
         "openapi"], cwd=EXAMPLES_DIR, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "/bookings/{group}" in json.loads(done.stdout)["paths"]
