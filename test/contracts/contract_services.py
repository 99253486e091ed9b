"""Annotated services the contract tests run and document (module level, so
their type hints resolve)."""

from __future__ import annotations

import dataclasses
import json
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12

from pydantic import BaseModel, Field
from werkzeug.wrappers import Request

from nameko_like.contracts import validated
from nameko_like.events import event_handler
from nameko_like.messaging import consume
from nameko_like.rpc import rpc
from nameko_like.web.handlers import http
from kombu import Exchange, Queue

#: what the handlers below received, in order
received: list[object] = []

ORDERS_QUEUE = Queue("contract-orders", exchange=Exchange("contract-orders"),
                     routing_key="order")


@dataclasses.dataclass
class Leg:
    """One leg of a journey."""

    origin: str
    destination: str
    minutes: int = 60


class Journey(BaseModel):
    """A journey: legs, and who travels."""

    traveller: str = Field(min_length=1)
    legs: list[Leg]


class Booked(TypedDict):
    """The answer to a booking."""

    reference: str
    legs: int


class OrderPlaced(TypedDict):
    """The payload of ``orders.placed``."""

    order_id: int
    item: str


@validated
class Bookings:
    """Every entrypoint validated (the class is marked)."""

    name = "bookings"

    @rpc
    def book(self, journey: Journey, priority: int = 0) -> Booked:
        """Book a journey; returns its reference."""
        received.append(("book", journey, priority))
        return {"reference": f"{journey.traveller}-{len(journey.legs)}",
                "legs": len(journey.legs)}

    @rpc
    def echo_leg(self, leg: Leg) -> Leg:
        """The leg back, serialized from its dataclass."""
        received.append(("echo_leg", leg))
        return leg

    @rpc
    def untyped(self, value):  # type: ignore[no-untyped-def]
        """No annotations: never validated."""
        received.append(("untyped", value))
        return value

    @event_handler("orders", "placed")
    def on_placed(self, order: OrderPlaced) -> None:
        """Count an order."""
        received.append(("placed", order))

    @consume(ORDERS_QUEUE)
    def on_order(self, order: OrderPlaced) -> None:
        """An order from a plain queue."""
        received.append(("consumed", order))

    @http("POST", "/journeys/<int:group>")
    def post_journey(self, request: Request, group: int, journey: Journey) -> Booked:
        """Book a journey over HTTP."""
        received.append(("post", group, journey))
        return {"reference": f"{group}/{journey.traveller}", "legs": len(journey.legs)}

    @http("GET", "/legs/<origin>/<minutes>")
    def get_leg(self, request: Request, origin: str, minutes: int) -> str:
        """A plain text answer (not serialized); ``minutes`` converted to int."""
        return json.dumps({"origin": origin, "minutes": minutes})


class Unvalidated:
    """The same annotations, not opted in: nothing is checked."""

    name = "unvalidated"

    @rpc
    def book(self, journey: Journey, priority: int = 0) -> Booked:
        """Whatever arrives reaches the method."""
        received.append(("book", journey, priority))
        return {"reference": repr(journey), "legs": 0}


class OneMethod:
    """Only the marked method is validated."""

    name = "one_method"

    @validated
    @rpc
    def checked(self, count: int) -> int:
        """Validated: ``count`` is converted to int."""
        return count * 2

    @rpc
    def unchecked(self, count: int) -> int:
        """Not validated."""
        return count * 2
