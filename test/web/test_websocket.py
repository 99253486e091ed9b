"""Websocket RPC and the hub, with a real websocket client."""

import json

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.constants import WEB_SERVER_CONFIG_KEY
from nameko_like.exceptions import (
    ConnectionNotFound,
    IncorrectSignature,
    MethodNotFound,
    RemoteError,
)
from nameko_like.testing.utils import get_extension
from nameko_like.testing.web_fixtures import _blocking
from nameko_like.web.handlers import http
from nameko_like.web.websocket import WebSocketHubProvider, WebSocketServer, rpc


class Chat:
    name = "chat"
    hub = WebSocketHubProvider()

    @rpc
    def echo(self, socket_id, value):
        return {"socket_id": socket_id, "value": value}

    @rpc
    def subscribe(self, socket_id, channel):
        self.hub.subscribe(socket_id, channel)
        return self.hub.get_subscriptions(socket_id)

    @rpc
    def unsubscribe(self, socket_id, channel):
        self.hub.unsubscribe(socket_id, channel)
        return self.hub.get_subscriptions(socket_id)

    @rpc
    def whisper(self, socket_id, to, text):
        return self.hub.unicast(to, "whisper", {"from": socket_id, "text": text})

    @rpc
    def slow(self, socket_id, seconds):
        eventlet.sleep(seconds)
        return seconds

    @rpc(expected_exceptions=KeyError)
    def fail(self, socket_id):
        raise KeyError("nope")

    @rpc
    def unserializable(self, socket_id):
        return object()

    @http("POST", "/say/<channel>")
    def say(self, request, channel):
        self.hub.broadcast(channel, "said", request.get_data(as_text=True))
        return "sent"

    @http("GET", "/ping")
    def ping(self, request):
        return "pong"


@pytest.fixture
def chat(container_factory, web_config):
    container = container_factory(Chat, web_config)
    container.start()
    return container


def hub_of(container):
    return get_extension(container, WebSocketServer).hub


def test_rpc_call(chat, websocket):
    client = websocket()
    assert client.rpc("echo", value=[1, 2]) == {"socket_id": client.socket_id, "value": [1, 2]}


def test_the_greeting_stays_queued_as_an_event(chat, websocket):
    client = websocket()
    assert client.wait_for_event("connected") == ("connected", {"socket_id": client.socket_id})


def test_errors_are_result_frames(chat, websocket):
    client = websocket()
    with pytest.raises(RemoteError) as info:
        client.rpc("fail")
    assert (info.value.exc_type, info.value.value) == ("KeyError", "'nope'")
    # Errors nameko_like knows come back as themselves, as over RPC.
    for method, kwargs, error in [
        ("missing", {}, MethodNotFound),
        ("echo", {"wrong": 1}, IncorrectSignature),
    ]:
        with pytest.raises(error):
            client.rpc(method, **kwargs)
    with pytest.raises(RemoteError) as info:
        client.rpc("unserializable")
    assert info.value.exc_type == "UnserializableValueError"


def test_error_frame_shape(chat, websocket):
    client = websocket()
    client.send(json.dumps({"method": "fail", "data": {}, "correlation_id": "abc"}))
    assert client.receive() == {
        "type": "result", "success": False, "correlation_id": "abc",
        "error": {"exc_type": "KeyError", "exc_path": "builtins.KeyError",
                  "exc_args": ["nope"], "value": "'nope'"},
    }


@pytest.mark.parametrize("frame", [
    "not json", "[1, 2]", '{"data": {}}', '{"method": "echo", "data": 3}',
])
def test_malformed_frames_get_an_error_and_the_socket_lives_on(chat, websocket, frame):
    client = websocket()
    client.send(frame)
    reply = client.receive()
    assert reply["success"] is False
    assert reply["error"]["exc_type"] == "MalformedRequest"
    assert client.rpc("echo", value=1)["value"] == 1


def test_calls_on_one_socket_run_concurrently(chat, websocket):
    client = websocket()
    for number, seconds in enumerate([0.3, 0.0]):
        frame = {"method": "slow", "data": {"seconds": seconds}, "correlation_id": number}
        client.send(json.dumps(frame))
    # The quick call answers first although it was sent second.
    assert [client.receive()["correlation_id"] for _ in range(2)] == [1, 0]


def test_broadcast_reaches_subscribers_only(chat, websocket, web_session):
    alice, bob, carol = websocket(), websocket(), websocket()
    assert alice.rpc("subscribe", channel="news") == ["news"]
    assert bob.rpc("subscribe", channel="news") == ["news"]
    carol.rpc("subscribe", channel="sports")
    assert web_session.post("/say/news", data="hello").text == "sent"
    for client in (alice, bob):
        assert client.wait_for_event("said") == ("said", "hello")
    carol.rpc("echo", value=0)  # a round trip: anything pushed would have come first
    assert carol.get_event_queue("said").empty()


def test_unsubscribe(chat, websocket, web_session):
    client = websocket()
    client.rpc("subscribe", channel="a")
    client.rpc("subscribe", channel="b")
    assert client.rpc("unsubscribe", channel="a") == ["b"]
    web_session.post("/say/a", data="missed")
    web_session.post("/say/b", data="heard")
    assert client.wait_for_event("said") == ("said", "heard")


def test_unicast(chat, websocket):
    alice, bob = websocket(), websocket()
    assert alice.rpc("whisper", to=bob.socket_id, text="psst") is True
    assert bob.wait_for_event("whisper") == ("whisper", {"from": alice.socket_id, "text": "psst"})


def test_unknown_socket_ids(chat, websocket):
    # As in Nameko: only subscribe insists on a live socket.
    client = websocket()
    assert client.rpc("whisper", to="no-such-socket", text="?") is False
    hub = hub_of(chat)
    with pytest.raises(ConnectionNotFound):
        hub.subscribe("gone", "channel")
    assert hub.get_subscriptions("gone") == []
    assert hub.unsubscribe("gone", "channel") is None


def test_hub_subscriptions_and_connections(chat, websocket):
    alice, bob = websocket(), websocket()
    alice.rpc("subscribe", channel="news")
    bob.rpc("subscribe", channel="news")
    hub = hub_of(chat)
    assert hub.subscriptions == {"news": {alice.socket_id, bob.socket_id}}
    assert set(hub.connections) == {alice.socket_id, bob.socket_id}
    assert hub.connections[alice.socket_id].subscriptions == {"news"}


def test_disconnect_forgets_the_socket_and_its_subscriptions(chat, websocket):
    client = websocket()
    client.rpc("subscribe", channel="news")
    server = get_extension(chat, WebSocketServer)
    assert server.channels == {"news": {client.socket_id}}
    client.close()
    for _ in range(100):
        if not server.sockets:
            break
        eventlet.sleep(0.01)
    assert server.sockets == {}
    assert server.channels == {}


def test_plain_get_on_the_endpoint_is_refused(chat, web_session):
    assert web_session.get("/ws").status_code == 400


def test_stop_closes_websockets(chat, websocket):
    client = websocket()
    client.rpc("echo", value=1)
    chat.stop()
    with pytest.raises(ConnectionError):
        client.receive()


def test_websocket_only_service_mounts_the_endpoint(container_factory, web_config, websocket):
    class Pusher:
        name = "pusher"
        hub = WebSocketHubProvider()

    container = container_factory(Pusher, web_config)
    container.start()
    client = websocket()
    hub_of(container).unicast(client.socket_id, "hello", {"n": 1})
    assert client.wait_for_event("hello") == ("hello", {"n": 1})


def test_kill_with_a_call_in_flight_leaves_nothing_running(chat, websocket):
    client = websocket()
    client.send(json.dumps({"method": "slow", "data": {"seconds": 5}, "correlation_id": 1}))
    eventlet.sleep(0.1)
    chat.kill()  # the plugin's leak check fails the test if anything lingers


def test_client_that_stops_reading_is_disconnected(chat, web_config, monkeypatch):
    import websocket as websocket_client

    from nameko_like.web.websocket import Connection

    monkeypatch.setattr(Connection, "outbox_size", 3)
    # A bare client that reads nothing (the fixture's always reads).
    client = _blocking(websocket_client.create_connection,
                       f"ws://{web_config[WEB_SERVER_CONFIG_KEY]}/ws")
    try:
        hub = hub_of(chat)
        [socket_id] = hub.connections
        big = "x" * 1024 * 1024
        for _ in range(200):  # far more than the socket buffers hold
            if not hub.unicast(socket_id, "flood", big):
                break
            eventlet.sleep(0)
        else:
            pytest.fail("the client was never disconnected")
    finally:
        client.abort()
        client.shutdown()


def test_graceful_stop_answers_calls_in_flight(chat, websocket):
    client = websocket()
    client.send(json.dumps({"method": "slow", "data": {"seconds": 0.3}, "correlation_id": 1}))
    eventlet.sleep(0.1)
    stopping = eventlet.spawn(chat.stop)
    assert client.receive() == {
        "type": "result", "success": True, "data": 0.3, "correlation_id": 1,
    }
    with pytest.raises(ConnectionError):
        client.receive()
    stopping.wait()
