from nameko_like.events import BROADCAST, SINGLETON, EventDispatcher, event_handler
from nameko_like.rpc import rpc


class OrderService:
    name = "orders"

    dispatch = EventDispatcher()

    @rpc
    def place(self, item):
        order = {"item": item}
        # Returns once the broker has the event.
        self.dispatch("order_placed", order)
        return order


class EmailService:
    name = "emails"

    # SERVICE_POOL (the default): every event is handled once per service,
    # however many instances of it run.
    @event_handler("orders", "order_placed")
    def send_confirmation(self, order):
        return f"your {order['item']} is on its way"


class AuditService:
    name = "audit"

    # SINGLETON: handled once in the whole cluster, by whichever service
    # with such a handler takes it first.
    @event_handler("orders", "order_placed", handler_type=SINGLETON)
    def record(self, order):
        return f"audit: {order['item']} ordered"


class CacheService:
    name = "cache"

    # BROADCAST: every running instance handles every event. Without a
    # stable broadcast_identifier, reliable_delivery must be off: each
    # instance's queue lives only as long as the instance.
    @event_handler("orders", "order_placed", handler_type=BROADCAST, reliable_delivery=False)
    def invalidate(self, order):
        return f"forgot cached {order['item']}"
