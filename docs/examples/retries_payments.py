"""Delayed retries: a payment gateway that is down for a moment."""

from nameko_like.events import event_handler
from nameko_like.retries import Retry
from nameko_like.rpc import rpc


class GatewayDown(IOError):
    """The payment gateway did not answer."""


class Gateway:
    """Stands in for a remote gateway that fails its first ``outage`` calls."""

    outage = 2
    calls = 0

    @classmethod
    def charge(cls, order_id, amount):
        cls.calls += 1
        if cls.calls <= cls.outage:
            raise GatewayDown(f"gateway unavailable (call {cls.calls})")
        return f"charged {amount} for order {order_id}"


class Payments:
    name = "payments"

    # Up to 3 runs: the second 0.2 s after the first fails, the third 0.4 s
    # after the second (each +-10%). Only GatewayDown (an IOError) is retried;
    # the caller waits and gets the outcome of the last run.
    @rpc(retry=Retry(on=IOError, attempts=3, backoff=0.2, max_delay=5, jitter=0.1))
    def charge(self, order_id, amount):
        return Gateway.charge(order_id, amount)


class Receipts:
    name = "receipts"
    sent = []

    # An event handler keeps trying for longer: 1 s, 2 s, 4 s, ... capped at
    # 60 s, 8 runs in all; past that the event goes to receipts.dead-letter.
    @event_handler("shop", "order_paid", retry=Retry(on=IOError, attempts=8, backoff=1.0,
                                                     max_delay=60))
    def send_receipt(self, order):
        self.sent.append(order["id"])
