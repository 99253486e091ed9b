"""Checked by mypy, never run: test/test_typing_seams.py runs mypy on it.

Lines ending in ``# E: <code>`` must get exactly that mypy error; lines
ending in ``# R: <type>`` must reveal that type; no other line may get an
error. (Not named test_*: pytest does not collect it.)
"""
# reveal_type is mypy's builtin here (typing.reveal_type is 3.11+).
# ruff: noqa: F821

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from kombu import Message, Queue

from nameko_like.amqp.consume import Delivery
from nameko_like.containers import ServiceContainer
from nameko_like.dependency_providers import Config
from nameko_like.events import event_handler
from nameko_like.messaging import consume
from nameko_like.protocols import ContainerInterface, DeliveredMessage, ReplyRouter
from nameko_like.rpc import rpc
from nameko_like.rpc.reply_router import RpcReplyRouter
from nameko_like.standalone.rpc import StandaloneReplyRouter
from nameko_like.timer import timer
from nameko_like.testing.services import once
from nameko_like.web import http


P = ParamSpec("P")
R = TypeVar("R")


class Service:
    name = "service"

    @rpc
    def add(self, x: int, y: int = 1) -> int:
        return x + y

    @rpc(expected_exceptions=ValueError, sensitive_arguments=("word",))
    def shout(self, word: str) -> str:
        return word.upper()

    @event_handler("source", "happened")
    def on_event(self, payload: dict[str, int]) -> None:
        pass

    @timer(interval=1.5, eager=True)
    def tick(self) -> None:
        pass

    @consume(Queue("jobs"))
    def job(self, body: bytes) -> None:
        pass

    @http("GET", "/items/<int:item_id>")
    def item(self, request: object, item_id: int) -> str:
        return str(item_id)


service = Service()

# Decorated methods keep their signatures, bound or not.
reveal_type(Service.add)  # R: def (self: check_decorators.Service, x: int, y: int =) -> int
reveal_type(service.add)  # R: def (x: int, y: int =) -> int
reveal_type(service.shout)  # R: def (word: str) -> str
reveal_type(service.on_event)  # R: def (payload: dict[str, int])
reveal_type(service.tick)  # R: def ()
reveal_type(service.job)  # R: def (body: bytes)
reveal_type(service.item)  # R: def (request: object, item_id: int) -> str

# ... so calls are checked against them.
service.add(1, 2)
service.add("1")  # E: arg-type
service.add(1, 2, 3)  # E: call-arg
service.shout(word=3)  # E: arg-type
added: str = service.add(1)  # E: assignment
service.on_event({"count": "one"})  # E: dict-item

# The decorators' own arguments are checked against the entrypoint's __init__.
rpc(expected_exceptions=3)  # E: call-overload
timer(interval="soon")  # E: call-overload
event_handler("source")  # E: call-overload

# bind() returns the type it was called on.
container = ServiceContainer(Service, {})
reveal_type(Config().bind(container, "config"))  # R: nameko_like.dependency_providers.Config
seam: ContainerInterface = container

# Both kinds of delivered message fit the DeliveredMessage seam.
def handle(message: DeliveredMessage) -> None:
    message.ack()


def deliver(raw_delivery: Delivery, kombu_message: Message) -> None:
    handle(raw_delivery)
    handle(kombu_message)
    handle("not a message")  # E: arg-type


# A container's reply router and a standalone proxy's (one of its kind) route replies.
def routers(router: RpcReplyRouter, standalone: StandaloneReplyRouter) -> list[ReplyRouter]:
    return [router, standalone]


class Tested:
    name = "tested"

    @once
    def bare(self, n: int) -> int:
        return n

    @once(2)
    def with_args(self, n: int) -> int:
        return n


reveal_type(Tested().bare)  # R: def (n: int) -> int
reveal_type(Tested().with_args)  # R: def (n: int) -> int


def logged(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return fn(*args, **kwargs)

    return wrapper


class Wrapped:
    name = "wrapped"

    @rpc
    @logged
    def method(self, n: int) -> int:
        return n


reveal_type(Wrapped().method)  # R: def (n: int) -> int
Wrapped().method(None)  # E: arg-type
