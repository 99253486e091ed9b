from nameko.events import EventDispatcher, event_handler
from nameko.rpc import RpcProxy, rpc
from nameko.web.handlers import http


class PricingService:
    name = "pricing"

    dispatch = EventDispatcher()

    @rpc
    def price(self, item):
        self.dispatch("priced", {"item": item})
        return {"tea": 3}.get(item, 0)


class ShopFront:
    name = "shopfront"

    pricing = RpcProxy("pricing")

    @http("GET", "/price/<item>")
    def get_price(self, request, item):
        return str(self.pricing.price(item))

    @event_handler("pricing", "priced")
    def on_priced(self, payload):
        return payload["item"]
