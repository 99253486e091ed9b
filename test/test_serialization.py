"""Serializers end to end: the ``serializer`` key, custom ``SERIALIZERS``, and
``ACCEPT`` keeping pickle (or anything unlisted) from being deserialized."""

import json
import os
import sys
import time
import types

import pytest
from kombu import Queue

from nameko_like._eventlet import eventlet
from nameko_like.amqp import Publisher
from nameko_like.events import event_handler
from nameko_like.exceptions import ConfigurationError, MalformedRequest
from nameko_like.messaging import consume
from nameko_like.rpc import rpc
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.services import entrypoint_waiter

CODEC_MODULE = "nameko_like_test_codec"


def _reversed_dumps(obj):
    return json.dumps(obj)[::-1]


def _reversed_loads(text):
    return json.loads(text[::-1])


@pytest.fixture
def reversed_json():
    """Config keys registering ``rjson``: JSON written backwards."""
    module = types.ModuleType(CODEC_MODULE)
    module.dumps, module.loads = _reversed_dumps, _reversed_loads
    sys.modules[CODEC_MODULE] = module
    yield {
        "SERIALIZERS": {"rjson": {
            "encoder": f"{CODEC_MODULE}:dumps",
            "decoder": f"{CODEC_MODULE}:loads",
            "content_type": "application/x-reversed-json",
        }},
        "serializer": "rjson",
    }
    del sys.modules[CODEC_MODULE]


class Echo:
    name = "echo"

    @rpc
    def echo(self, value):
        return value


handled = []


class Listener:
    name = "listener"

    @event_handler("somewhere", "happened")
    def on_event(self, payload):
        handled.append(payload)
        return payload


class MkdirOnUnpickle:
    """Unpickling this creates a directory: the proof a payload was unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


received = []


class PickleTarget:
    name = "pickle_target"

    @consume(Queue("untrusted", durable=True))
    def take(self, payload):
        received.append(payload)


@pytest.fixture(autouse=True)
def clear_lists():
    handled.clear()
    received.clear()


# --- the serializer key ----------------------------------------------------------------


@pytest.mark.parametrize("serializer", ["json", "yaml", "pickle"])
def test_serializer_key_used_for_requests_and_replies(container_factory, backend, serializer):
    config = dict(backend, serializer=serializer)
    container_factory(Echo, config).start()
    value = {"list": [1, 2], "text": "héllo", "none": None}
    with ClusterRpcProxy(config, timeout=10) as cluster:
        assert cluster.echo.echo(value) == value


@pytest.mark.integration
def test_serializer_key_on_the_wire(container_factory, rabbit_config, management):
    config = dict(rabbit_config, serializer="yaml")
    container = container_factory(Echo, config)
    container.start()
    container.stop()  # the request waits on the queue for us to look at
    with ClusterRpcProxy(config, timeout=10) as cluster:
        cluster.echo.echo.call_async("on the wire")
        [request] = management.wait_for(lambda: management.peek("rpc-echo"), timeout=5)
    assert request["properties"]["content_type"] == "application/x-yaml"
    assert "on the wire" in request["payload"]


def test_unknown_serializer_fails_when_the_container_is_built(container_factory, backend):
    # as in Nameko, before anything starts
    with pytest.raises(ConfigurationError, match=r"'serializer'.*no-such-format"):
        container_factory(Echo, dict(backend, serializer="no-such-format"))


# --- custom serializers ------------------------------------------------------------


def test_custom_serializer_for_rpc_and_events(container_factory, backend, reversed_json):
    config = dict(backend, **reversed_json)
    container_factory(Echo, config).start()
    listener = container_factory(Listener, config)
    listener.start()

    with ClusterRpcProxy(config, timeout=10) as cluster:
        assert cluster.echo.echo({"a": [1, "b"]}) == {"a": [1, "b"]}
    with entrypoint_waiter(listener, "on_event", timeout=5) as result:
        event_dispatcher(config)("somewhere", "happened", {"what": "it"})
    assert result.get() == {"what": "it"}


@pytest.mark.integration
def test_custom_serializer_on_the_wire(container_factory, rabbit_config, management, reversed_json):
    config = dict(rabbit_config, **reversed_json)
    container = container_factory(Listener, config)
    container.start()
    container.stop()
    event_dispatcher(config)("somewhere", "happened", {"what": "it"})
    queue_name = "evt-somewhere-happened--listener.on_event"
    [message] = management.wait_for(lambda: management.peek(queue_name))
    assert message["properties"]["content_type"] == "application/x-reversed-json"
    assert message["payload"] == json.dumps({"what": "it"})[::-1]


# --- ACCEPT ------------------------------------------------------------------------------


def publish_pickle(config, payload):
    publisher = Publisher(config=config, serializer="pickle")
    publisher.publish(payload, exchange="", routing_key="untrusted")


def test_pickle_to_a_json_service_is_dead_lettered_not_unpickled(
        container_factory, backend, tmp_path, take_messages):
    container_factory(PickleTarget, dict(backend)).start()
    marker = tmp_path / "unpickled"

    publish_pickle(backend, MkdirOnUnpickle(marker))
    [message] = take_messages(backend, "pickle_target.dead-letter", timeout=5)

    assert message.content_type == "application/x-python-serialize"
    assert "application/x-python-serialize" in message.headers["x-dead-letter-reason"]
    eventlet.sleep(0.2)
    assert not marker.exists()
    assert received == []


def test_pickle_is_accepted_when_listed(container_factory, backend, tmp_path):
    # the same message as above: this shows it *would* have been unpickled
    container_factory(PickleTarget, dict(backend, ACCEPT=["json", "pickle"])).start()
    marker = tmp_path / "unpickled"
    publish_pickle(backend, MkdirOnUnpickle(marker))
    publish_pickle(backend, {"plain": "dict"})
    deadline = time.monotonic() + 5
    while len(received) < 2 and time.monotonic() < deadline:
        eventlet.sleep(0.01)
    assert marker.is_dir()
    assert received == [None, {"plain": "dict"}]


def test_rpc_request_in_an_unaccepted_format_gets_malformed_request(
        container_factory, backend, tmp_path, take_messages):
    container_factory(Echo, dict(backend)).start()
    marker = tmp_path / "unpickled"
    client_config = dict(backend, serializer="pickle", ACCEPT=["pickle", "json"])
    with ClusterRpcProxy(client_config, timeout=10) as cluster:
        with pytest.raises(MalformedRequest, match="application/x-python-serialize"):
            cluster.echo.echo(MkdirOnUnpickle(marker))
    assert len(take_messages(backend, "echo.dead-letter", timeout=5)) == 1
    assert not marker.exists()
