"""Run an entrypoint by hand, or wait for one to fire, in a real container."""

from nameko_like.testing.services import entrypoint_hook, entrypoint_waiter

from events_orders import EmailService, OrderService
from rpc_greeting import GreetingService


def test_hello(container_factory, rabbit_config):
    container = container_factory(GreetingService, rabbit_config)
    container.start()

    # Calls `hello` as a worker of the container would, without any RPC.
    with entrypoint_hook(container, "hello") as hello:
        assert hello("Ada") == "Hello, Ada!"


def test_placing_an_order_sends_an_email(container_factory, rabbit_config):
    orders = container_factory(OrderService, rabbit_config)
    emails = container_factory(EmailService, rabbit_config)
    orders.start()
    emails.start()

    # Leaving the outer block waits until a `send_confirmation` worker has run.
    with entrypoint_waiter(emails, "send_confirmation") as confirmation:
        with entrypoint_hook(orders, "place") as place:
            place("teapot")

    assert confirmation.get() == "your teapot is on its way"
