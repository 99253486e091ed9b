"""Typed contracts: a validated service, its payload types and a typed caller."""

import dataclasses

from pydantic import BaseModel, Field
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12
from werkzeug.wrappers import Request

from nameko_like.contracts import validated
from nameko_like.events import EventDispatcher, event_handler
from nameko_like.rpc import RpcProxy, rpc
from nameko_like.web.handlers import http


@dataclasses.dataclass
class Leg:
    origin: str
    destination: str
    minutes: int = 60


class Journey(BaseModel):
    traveller: str = Field(min_length=1)
    legs: list[Leg]


class Booked(TypedDict):
    reference: str
    legs: int


class Booking(TypedDict):
    reference: str
    traveller: str


@validated  # every entrypoint of the class validates its payloads
class BookingService:
    name = "bookings"

    dispatch = EventDispatcher()

    @rpc
    def book(self, journey: Journey, priority: int = 0) -> Booked:
        """Book a journey; ``journey`` arrives as a Journey."""
        reference = f"{journey.traveller}-{len(journey.legs)}"
        self.dispatch("booked", {"reference": reference, "traveller": journey.traveller})
        return {"reference": reference, "legs": len(journey.legs)}

    @http("POST", "/bookings/<int:group>")
    def post_booking(self, request: Request, group: int, journey: Journey) -> Booked:
        """Book over HTTP: ``journey`` is the JSON body, the result is JSON."""
        return self.book(journey)


class Mailer:
    name = "mailer"

    sent: list = []

    @validated  # only this method
    @event_handler("bookings", "booked")
    def on_booked(self, booking: Booking) -> None:
        """Confirm a booking by mail."""
        Mailer.sent.append(booking["reference"])


class TravelAgent:
    name = "agent"

    # typed: mypy sees BookingService's signatures on self.bookings;
    # validate=True checks the arguments before sending
    bookings = RpcProxy(BookingService, timeout=10, validate=True)

    @rpc
    def book_for(self, traveller: str) -> Booked:
        """Book a one-leg journey for ``traveller``."""
        journey = Journey(traveller=traveller, legs=[Leg("LHR", "JFK")])
        return self.bookings.book(journey)
