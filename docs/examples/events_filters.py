"""Payload filters: handle only the events that matter to this handler."""

from nameko_like.events import event_handler


def is_large(order):
    return order["total"] >= 1000


class Fulfilment:
    name = "fulfilment"
    express_orders = []
    large_orders = []

    # a dict: every field must be present with an equal value
    @event_handler("shop", "order_placed", payload_filter={"shipping": "express"})
    def rush(self, order):
        self.express_orders.append(order["id"])

    # a predicate: any function of the payload
    @event_handler("shop", "order_placed", payload_filter=is_large)
    def review(self, order):
        self.large_orders.append(order["id"])
