"""The web service the HTTP abuse tests of the fault tier run in a subprocess.

HTTP and websocket entrypoints only: the process needs no broker.
"""

from nameko_like.web.handlers import http
from nameko_like.web.websocket import rpc as ws_rpc


class WebTarget:
    name = "web_target"

    @http("GET", "/ping")
    def ping(self, request):
        return "pong"

    @http("POST", "/echo")
    def echo(self, request):
        return request.get_data()

    @ws_rpc
    def hello(self, socket_id, name="world"):
        return f"hello {name}"
