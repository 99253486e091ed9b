"""Tracing a shop: an HTTP gateway calling a stock service over RPC.

Run it as a script (RabbitMQ on localhost, or AMQP_URI) to see the spans of
one request printed as JSON: one trace, from the HTTP request to the RPC
worker.
"""

import json
import os

import requests
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

from nameko_like.rpc import RpcProxy, rpc
from nameko_like.runners import ServiceRunner
from nameko_like.web.handlers import http

tracer = trace.get_tracer("shop")


def setup_tracing(exporter):
    """Once per process, before the services start: where spans go."""
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    # BatchSpanProcessor and an OTLP exporter in production
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)


class Gateway:
    name = "gateway"
    stock = RpcProxy("stock", timeout=5)

    @http("GET", "/items/<int:item_id>")
    def get_item(self, request, item_id):
        # a span of your own is a child of the request's span
        with tracer.start_as_current_span("check the basket"):
            level = self.stock.level(item_id)
        return json.dumps({"item": item_id, "stock": level})


class Stock:
    name = "stock"

    @rpc
    def level(self, item_id):
        return item_id * 10


CONFIG = {
    "AMQP_URI": os.environ.get("AMQP_URI", "amqp://guest:guest@localhost:5672/"),
    "WEB_SERVER_ADDRESS": "127.0.0.1:8000",
    "TRACING": True,
}


def main(config):
    runner = ServiceRunner(config)
    runner.add_service(Gateway)
    runner.add_service(Stock)
    runner.start()
    try:
        address = config["WEB_SERVER_ADDRESS"]
        return requests.get(f"http://{address}/items/4", timeout=10).json()
    finally:
        runner.stop()


if __name__ == "__main__":
    from nameko_like._eventlet import eventlet

    eventlet.monkey_patch()  # as `nameko_like run` does, before any I/O
    setup_tracing(ConsoleSpanExporter())  # prints each span as JSON
    address = os.environ.get("WEB_SERVER_ADDRESS", CONFIG["WEB_SERVER_ADDRESS"])
    print(json.dumps(main(dict(CONFIG, WEB_SERVER_ADDRESS=address))))
