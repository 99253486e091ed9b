import json

from nameko_like.web.handlers import http


class ShopService:
    name = "shop"

    stock = {"apple": 3}

    @http("GET", "/stock/<string:item>")
    def get_stock(self, request, item):
        # A str (or bytes) is the body of a 200 response.
        return json.dumps({"item": item, "count": self.stock.get(item, 0)})

    @http("POST", "/stock/<string:item>")
    def add_stock(self, request, item):
        count = int(request.get_data(as_text=True) or 1)
        self.stock[item] = self.stock.get(item, 0) + count
        # (status, body)
        return 201, json.dumps({"item": item, "count": self.stock[item]})

    @http("GET,HEAD", "/version")
    def version(self, request):
        # (status, headers, body)
        return 200, {"Content-Type": "text/plain", "X-Shop": "1"}, "1.0\n"

    @http("GET", "/fail", expected_exceptions=ValueError)
    def fail(self, request):
        # An expected exception becomes a 400; anything else a 500.
        raise ValueError("no such thing")
