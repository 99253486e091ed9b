"""@http entrypoints over raw HTTP: statuses, bodies, content types, headers.

One service with an entrypoint per return form and error kind runs in a
ServiceRunner on a free port; each request goes over a fresh
``http.client`` connection and the answer is reported as it was received.
"""

import json
import socket
from http.client import HTTPConnection

from _side import FRAMEWORK, config, module, run_main
from werkzeug.exceptions import BadRequest as WerkzeugBadRequest
from werkzeug.exceptions import NotFound as WerkzeugNotFound
from werkzeug.wrappers import Response

handlers = module("web.handlers")
runners = module("runners")

#: Headers that carry no behaviour worth comparing: the time, and the
#: server's name (eventlet's on one side, ours on the other).
IGNORED_HEADERS = {"date", "server"}


class Unwelcome(Exception):
    pass


class Web:
    name = "web"

    @handlers.http("GET", "/plain")
    def plain(self, request):
        return "hello"

    @handlers.http("GET", "/unicode")
    def unicode(self, request):
        return "h\u00e9llo \u2603"

    @handlers.http("GET", "/bytes")
    def raw_bytes(self, request):
        return b"raw"

    @handlers.http("GET", "/status")
    def status(self, request):
        return 201, "created"

    @handlers.http("GET", "/headers")
    def headers(self, request):
        return 202, {"X-Thing": "1", "Content-Type": "application/json"}, '{"a": 1}'

    @handlers.http("GET", "/response")
    def response(self, request):
        return Response("<b>resp</b>", status=203, mimetype="text/html",
                        headers={"X-Made": "by hand"})

    @handlers.http("GET", "/items/<int:item_id>")
    def item(self, request, item_id):
        return json.dumps({"id": item_id, "type": type(item_id).__name__})

    @handlers.http("GET,POST", "/both")
    def both(self, request):
        return request.method

    @handlers.http("PUT", "/echo")
    def echo(self, request):
        body = request.get_data(as_text=True)
        return json.dumps({"body": body, "length": len(body),
                           "type": request.content_type, "query": request.args.get("q")})

    @handlers.http("POST", "/json")
    def json_body(self, request):
        return json.dumps({"got": request.get_json()})

    @handlers.http("GET", "/dir/")
    def directory(self, request):
        return "dir"

    @handlers.http("GET", "/boom")
    def boom(self, request):
        raise ValueError("boom", 1)

    @handlers.http("GET", "/expected", expected_exceptions=Unwelcome)
    def expected(self, request):
        raise Unwelcome("go away")

    @handlers.http("GET", "/expected-tuple", expected_exceptions=(KeyError, Unwelcome))
    def expected_tuple(self, request):
        raise KeyError("missing")

    @handlers.http("GET", "/werkzeug-not-found")
    def werkzeug_not_found(self, request):
        raise WerkzeugNotFound("no such thing")

    @handlers.http("GET", "/werkzeug-bad-request")
    def werkzeug_bad_request(self, request):
        raise WerkzeugBadRequest("bad thing")

    @handlers.http("GET", "/mismatch/<int:value>")
    def mismatch(self, request, other):
        return "never"

    @handlers.http("GET", "/none")
    def none(self, request):
        return None

    @handlers.http("GET", "/dict")
    def dict_(self, request):
        return {"a": 1}

    @handlers.http("GET", "/long-tuple")
    def long_tuple(self, request):
        return 200, {}, "body", "extra"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(port, method, path, body=None, headers=None):
    """One request on a fresh connection: what came back."""
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        answer = connection.getresponse()
        data = answer.read()
        seen = {name.lower(): value for name, value in answer.getheaders()
                if name.lower() not in IGNORED_HEADERS}
        if "allow" in seen:
            # werkzeug gathers the allowed methods in a set: their order
            # follows the process's string hashing, on either side.
            seen["allow"] = ", ".join(sorted(seen["allow"].split(", ")))
        text = data.decode("utf-8", "replace").replace(f":{port}/", ":<port>/")
        if "location" in seen:
            seen["location"] = seen["location"].replace(f":{port}/", ":<port>/")
        return {"status": answer.status, "reason": answer.reason, "headers": seen,
                "body": text}
    finally:
        connection.close()


REQUESTS = {
    "plain": ("GET", "/plain"),
    "unicode": ("GET", "/unicode"),
    "bytes": ("GET", "/bytes"),
    "status": ("GET", "/status"),
    "headers": ("GET", "/headers"),
    "response": ("GET", "/response"),
    "converter": ("GET", "/items/42"),
    "converter_mismatch": ("GET", "/items/forty-two"),
    "both_get": ("GET", "/both"),
    "both_post": ("POST", "/both", b""),
    "both_delete": ("DELETE", "/both"),
    "head": ("HEAD", "/plain"),
    "options": ("OPTIONS", "/both"),
    "echo": ("PUT", "/echo?q=x", "caf\u00e9 au lait".encode(), {"Content-Type": "text/plain"}),
    "echo_empty": ("PUT", "/echo", b""),
    "json": ("POST", "/json", b'{"v": [1, 2]}', {"Content-Type": "application/json"}),
    "json_malformed": ("POST", "/json", b"{nope", {"Content-Type": "application/json"}),
    "redirect": ("GET", "/dir"),
    "not_found": ("GET", "/no/such/route"),
    "wrong_method": ("POST", "/plain", b"x"),
    "boom": ("GET", "/boom"),
    "expected": ("GET", "/expected"),
    "expected_tuple": ("GET", "/expected-tuple"),
    "werkzeug_not_found": ("GET", "/werkzeug-not-found"),
    "werkzeug_bad_request": ("GET", "/werkzeug-bad-request"),
    "mismatch": ("GET", "/mismatch/1"),
    "none": ("GET", "/none"),
    "dict": ("GET", "/dict"),
    "long_tuple": ("GET", "/long-tuple"),
    "websocket_endpoint_absent": ("GET", "/ws"),
}


def main():
    port = free_port()
    runner = runners.ServiceRunner(config(WEB_SERVER_ADDRESS=f"127.0.0.1:{port}"))
    runner.add_service(Web)
    runner.start()
    try:
        observed = {name: request(port, *spec) for name, spec in REQUESTS.items()}
    finally:
        runner.stop()
    if FRAMEWORK == "nameko_like":
        # Deliberate (docs/migrating.rst): werkzeug's HTTP errors raised by a
        # handler keep their own status, where Nameko answers 500.
        for name, own in [("json_malformed", 400), ("werkzeug_bad_request", 400),
                          ("werkzeug_not_found", 404)]:
            if observed[name]["status"] == own:
                observed[name]["status"], observed[name]["reason"] = 500, "INTERNAL SERVER ERROR"
        # Deliberate: a bytes body is sent as it is, where Nameko refuses it.
        if observed["bytes"] == {"status": 200, "reason": "OK", "body": "raw",
                                 "headers": {"content-length": "3",
                                             "content-type": "text/plain; charset=utf-8"}}:
            body = "Error: TypeError: Payload must be a string. Got `b'raw'`\n"
            observed["bytes"] = {"status": 500, "reason": "INTERNAL SERVER ERROR", "body": body,
                                 "headers": {"content-length": str(len(body)),
                                             "content-type": "text/plain; charset=utf-8"}}
        # Deliberate: a tuple of the wrong length is named as such, where
        # Nameko's unpacking fails with "too many values to unpack".
        wrong_tuple = observed["long_tuple"]
        if wrong_tuple["body"].startswith("Error: TypeError: an HTTP entrypoint may return"):
            wrong_tuple["body"] = "Error: ValueError: too many values to unpack (expected 2)\n"
            wrong_tuple["headers"]["content-length"] = str(len(wrong_tuple["body"]))
    return observed


run_main(main)
