"""Websocket RPC and the hub, driven by a raw websocket client.

The same client code (websocket-client, pinned in both virtualenvs) speaks
to the service on both sides: the greeting, calls with their correlation
ids, every kind of error frame, subscriptions, broadcast and unicast, and
the hub's public API and state as a worker sees them.
"""

import json
import socket
import time
import uuid
from http.client import HTTPConnection

import websocket
from _side import FRAMEWORK, config, describe_error, module, run_main

if FRAMEWORK == "nameko":
    import importlib.metadata

    import werkzeug

    # Nameko 2.14.1's websocket module reads werkzeug.__version__, which
    # werkzeug 3 no longer has: without this it cannot even be imported.
    werkzeug.__version__ = importlib.metadata.version("werkzeug")

handlers = module("web.handlers")
ws_module = module("web.websocket")
runners = module("runners")

#: Frames have arrived well before this many seconds.
RECEIVE_TIMEOUT = 10


class Chat:
    name = "chat"
    hub = ws_module.WebSocketHubProvider()

    @ws_module.rpc
    def echo(self, socket_id, value):
        return {"value": value, "socket_id_is_mine": isinstance(socket_id, str)}

    @ws_module.rpc
    def subscribe(self, socket_id, channel):
        self.hub.subscribe(socket_id, channel)
        return self.hub.get_subscriptions(socket_id)

    @ws_module.rpc
    def unsubscribe(self, socket_id, channel):
        self.hub.unsubscribe(socket_id, channel)
        return self.hub.get_subscriptions(socket_id)

    @ws_module.rpc
    def whisper(self, socket_id, to, text):
        return self.hub.unicast(to, "whisper", {"text": text})

    @ws_module.rpc
    def shout(self, socket_id, channel, text):
        return self.hub.broadcast(channel, "shout", text)

    @ws_module.rpc(expected_exceptions=KeyError)
    def fail(self, socket_id):
        raise KeyError("nope")

    @ws_module.rpc
    def hub_state(self, socket_id):
        hub = self.hub
        return {
            "public": sorted(name for name in dir(hub) if not name.startswith("_")),
            # Nameko keeps a channel's empty set once its last socket left;
            # nameko_like drops it (docs/migrating.rst): compare members only.
            "subscriptions": {channel: len(members)
                              for channel, members in hub.subscriptions.items() if members},
            "mine": hub.get_subscriptions(socket_id),
            "get_subscriptions_unknown": outcome_of(hub.get_subscriptions, "no-such-socket"),
            "unsubscribe_unknown": outcome_of(hub.unsubscribe, "no-such-socket", "news"),
            "subscribe_unknown": outcome_of(hub.subscribe, "no-such-socket", "news"),
            "unicast_unknown": outcome_of(hub.unicast, "no-such-socket", "x", {}),
            "broadcast_nobody": outcome_of(hub.broadcast, "empty-channel", "x", {}),
        }

    @handlers.http("POST", "/say/<channel>")
    def say(self, request, channel):
        self.hub.broadcast(channel, "said", request.get_data(as_text=True))
        return "sent"


def outcome_of(function, *args):
    try:
        return {"value": function(*args)}
    except Exception as exc:  # noqa: BLE001 - every error is an observation
        return {"raised": type(exc).__name__}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    """A bare websocket client: frames in, frames out, nothing else."""

    def __init__(self, port):
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}/ws",
                                              timeout=RECEIVE_TIMEOUT)
        self.greeting = self.receive()
        self.socket_id = self.greeting["data"]["socket_id"]

    def receive(self):
        return json.loads(self.ws.recv())

    def call(self, method, correlation_id, **data):
        self.ws.send(json.dumps({"method": method, "data": data,
                                 "correlation_id": correlation_id}))
        return self.receive()

    def raw(self, text):
        self.ws.send(text)
        return self.receive()


def described_greeting(greeting):
    socket_id = greeting["data"]["socket_id"]
    return {"keys": sorted(greeting), "type": greeting["type"], "event": greeting["event"],
            "data_keys": sorted(greeting["data"]),
            "socket_id_is_uuid4": uuid.UUID(socket_id).version == 4}


def post(port, path, body):
    connection = HTTPConnection("127.0.0.1", port, timeout=RECEIVE_TIMEOUT)
    try:
        connection.request("POST", path, body=body)
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


def plain_get(port, path):
    connection = HTTPConnection("127.0.0.1", port, timeout=RECEIVE_TIMEOUT)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return {"status": answer.status, "body": answer.read().decode()}
    finally:
        connection.close()


def exercise(port):
    seen = {}
    alice, bob = Client(port), Client(port)
    seen["greeting"] = described_greeting(alice.greeting)
    seen["distinct_ids"] = alice.socket_id != bob.socket_id

    seen["call_int_id"] = alice.call("echo", 7, value=[1, "two"])
    seen["call_str_id"] = alice.call("echo", "abc", value=None)
    alice.ws.send(json.dumps({"method": "echo", "data": {"value": 1}}))
    seen["call_no_id"] = alice.receive()

    seen["expected_error"] = alice.call("fail", 1)
    seen["unknown_method"] = alice.call("no_such_method", 2)
    seen["bad_signature"] = alice.call("echo", 3, wrong=1)
    seen["missing_argument"] = alice.call("echo", 4)
    for name, text in [("not_json", "not json"), ("list", "[1, 2]"),
                       ("no_method", '{"data": {}, "correlation_id": 5}'),
                       ("data_not_object", '{"method": "echo", "data": 3, "correlation_id": 8}'),
                       ("data_null", '{"method": "echo", "data": null, "correlation_id": 9}')]:
        seen[f"malformed_{name}"] = alice.raw(text)
    seen["alive_after_errors"] = alice.call("echo", 6, value="still here")["success"]

    seen["subscribe"] = alice.call("subscribe", 10, channel="news")
    seen["subscribe_again"] = alice.call("subscribe", 11, channel="sports")
    seen["bob_subscribes"] = bob.call("subscribe", 12, channel="news")
    seen["http_broadcast"] = post(port, "/say/news", "extra!")
    seen["alice_hears"] = alice.receive()
    seen["bob_hears"] = bob.receive()
    seen["rpc_broadcast_result"] = bob.call("shout", 13, channel="sports", text="goal")
    seen["alice_hears_shout"] = alice.receive()
    seen["hub_state"] = alice.call("hub_state", 14)
    seen["unsubscribe"] = alice.call("unsubscribe", 15, channel="news")
    seen["unsubscribe_not_subscribed"] = alice.call("unsubscribe", 16, channel="never")

    seen["unicast"] = alice.call("whisper", 20, to=bob.socket_id, text="psst")
    seen["bob_hears_whisper"] = bob.receive()
    seen["unicast_unknown"] = alice.call("whisper", 21, to="no-such-socket", text="?")

    bob.ws.close()
    time.sleep(0.5)  # for the server to see bob go
    seen["after_close"] = alice.call("hub_state", 30)["data"]["subscriptions"]
    alice.ws.close()
    return seen


def normalised(seen):
    if FRAMEWORK != "nameko_like":
        return seen
    # Deliberate (docs/migrating.rst): a malformed frame's error says what
    # is wrong with it, where Nameko always says "Invalid JSON data".
    for name in ("malformed_not_json", "malformed_list", "malformed_no_method"):
        error = seen[name].get("error") or {}
        if error.get("exc_type") == "MalformedRequest":
            error["value"] = "Invalid JSON data"
            error["exc_args"] = ["Invalid JSON data"]
    # Deliberate: a frame whose "data" is not an object is a MalformedRequest
    # saying so; Nameko tries the call and fails on its signature.
    error = seen["malformed_data_not_object"].get("error") or {}
    if error.get("exc_type") == "MalformedRequest":
        message = "inspect.getcallargs() argument after ** must be a mapping, not int"
        error.update(exc_type="IncorrectSignature", value=message, exc_args=[message],
                     exc_path="nameko.exceptions.IncorrectSignature")
    # Deliberate: an unknown method's error names it, as MethodNotFound does
    # over AMQP on both sides; Nameko's websocket sends it without args.
    error = seen["unknown_method"].get("error") or {}
    if error.get("exc_type") == "MethodNotFound" and error.get("value") == "no_such_method":
        error["value"], error["exc_args"] = "", []
    return seen


def main():
    port = free_port()
    runner = runners.ServiceRunner(config(WEB_SERVER_ADDRESS=f"127.0.0.1:{port}"))
    runner.add_service(Chat)
    runner.start()
    try:
        seen = exercise(port)
        seen["plain_get"] = plain_get(port, "/ws")
        return normalised(seen)
    except Exception as exc:  # noqa: BLE001 - a crash is reported, not hidden
        return {"crashed": describe_error(exc)}
    finally:
        runner.stop()


run_main(main)
