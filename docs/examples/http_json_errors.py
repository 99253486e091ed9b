"""Shape HTTP errors as JSON by subclassing the ``@http`` entrypoint.

Expected exceptions become ``400`` with ``{"error": ..., "message": ...}``;
anything else becomes a ``500`` that names no internals. Dicts and lists
returned by a method are sent as JSON.
"""

import json

from werkzeug.wrappers import Response

from nameko_like.web.handlers import HttpRequestHandler


class HttpError(Exception):
    """Raise from a service method to answer with ``status``."""

    status = 400


class NotFound(HttpError):
    status = 404


class JsonHttpHandler(HttpRequestHandler):
    """``@http`` with JSON bodies for results and errors."""

    def response_from_result(self, result):
        if isinstance(result, (dict, list)):
            return Response(json.dumps(result), mimetype="application/json")
        return super().response_from_result(result)

    def response_from_exception(self, exc):
        if isinstance(exc, HttpError) or isinstance(exc, self.expected_exceptions):
            status = getattr(exc, "status", 400)
            payload = {"error": type(exc).__name__, "message": str(exc)}
        else:
            # The traceback is in the service's log; the client gets no internals.
            status = 500
            payload = {"error": "InternalError", "message": "something went wrong"}
        return Response(json.dumps(payload), status=status, mimetype="application/json")


http = JsonHttpHandler.decorator


class Inventory:
    name = "inventory"

    items = {"apple": 3}

    @http("GET", "/items/<name>", expected_exceptions=HttpError)
    def get_item(self, request, name):
        if name not in self.items:
            raise NotFound(f"no item named {name}")
        return {"name": name, "count": self.items[name]}

    @http("POST", "/items/<name>", expected_exceptions=HttpError)
    def set_item(self, request, name):
        count = request.get_json(silent=True)
        if not isinstance(count, int):
            raise HttpError("send the count as a JSON integer")
        self.items[name] = count
        return 201, json.dumps({"name": name, "count": count})

    @http("GET", "/broken")
    def broken(self, request):
        raise RuntimeError("database password is hunter2")
