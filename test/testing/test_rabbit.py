"""Tests for nameko_like.testing.rabbit, the management API client.

The tests marked ``integration`` talk to the local broker's management API
(``rabbitmq-plugins enable rabbitmq_management``), each in a vhost of its own.
"""

import json
import time
import uuid
from urllib.parse import quote

import amqp.exceptions
import kombu
import pytest
import requests

from nameko_like.testing.rabbit import RabbitManager, wait_for

AMQP_HOST = "localhost:5672"

# The management API refreshes connection and consumer lists only every few
# seconds, so anything read from it is polled for up to this long.
API_LAG = 30


# --- wait_for (no broker needed) ----------------------------------------------


def test_wait_for_returns_first_truthy_result():
    results = iter([0, None, "", "done"])
    assert wait_for(lambda: next(results), timeout=5, interval=0) == "done"


def test_wait_for_times_out_with_last_result():
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"within 0.2s.*\[\]"):
        wait_for(list, timeout=0.2, interval=0.05)
    assert 0.2 <= time.monotonic() - started < 2


def test_wait_for_is_also_a_method():
    assert RabbitManager.wait_for(lambda: 1, timeout=1) == 1


def test_credentials_move_from_url_to_auth():
    manager = RabbitManager("http://user:p%40ss@example.invalid:15673/")
    assert manager.base_url == "http://example.invalid:15673"
    assert manager.session.auth == ("user", "p@ss")  # percent-decoded
    manager.close()


def test_url_without_credentials():
    manager = RabbitManager("http://example.invalid:15672")
    assert manager.session.auth is None
    assert "example.invalid:15672" in repr(manager)
    manager.close()


# --- against the broker -------------------------------------------------------


@pytest.fixture
def rabbit_manager():
    manager = RabbitManager()
    yield manager
    manager.close()


@pytest.fixture
def vhost(rabbit_manager):
    # A "/" inside the name proves that vhosts are escaped as one segment.
    name = f"nameko_like/test-rabbit-{uuid.uuid4().hex[:8]}"
    rabbit_manager.create_vhost(name)
    rabbit_manager.set_vhost_permissions(name, "guest")
    yield name
    rabbit_manager.delete_vhost(name)


@pytest.fixture
def connection(vhost):
    conn = kombu.Connection(f"amqp://guest:guest@{AMQP_HOST}/{quote(vhost, safe='')}")
    conn.connect()
    yield conn
    conn.release()


@pytest.mark.integration
def test_overview(rabbit_manager):
    assert "rabbitmq_version" in rabbit_manager.overview()


@pytest.mark.integration
def test_vhost_lifecycle(rabbit_manager):
    name = f"nameko_like/test-lifecycle-{uuid.uuid4().hex[:8]}"
    rabbit_manager.create_vhost(name)
    try:
        exchanges = {ex["name"] for ex in rabbit_manager.get_exchanges(name)}
        assert {"", "amq.direct", "amq.topic"} <= exchanges
        assert rabbit_manager.get_queues(name) == []
    finally:
        rabbit_manager.delete_vhost(name)
    with pytest.raises(requests.HTTPError, match="404") as exc_info:
        rabbit_manager.get_exchanges(name)
    assert exc_info.value.response.status_code == 404
    rabbit_manager.delete_vhost(name)  # a second delete is harmless


@pytest.mark.integration
def test_permissions_allow_connecting(connection):
    # The fixture connected through the vhost it granted guest access to.
    assert connection.connected


@pytest.mark.integration
def test_queues_exchanges_and_bindings(rabbit_manager, vhost, connection):
    exchange = kombu.Exchange("test.events", type="topic", durable=False)
    queue = kombu.Queue("test-queue", exchange=exchange,
                        routing_key="thing.*", durable=False)
    queue(connection.default_channel).declare()

    assert [q["name"] for q in rabbit_manager.get_queues(vhost)] == [
        "test-queue"]
    info = rabbit_manager.get_queue(vhost, "test-queue")
    assert info["name"] == "test-queue"
    assert info["vhost"] == vhost
    assert info["durable"] is False
    assert rabbit_manager.get_queue(vhost, "no-such-queue") is None

    bindings = rabbit_manager.get_queue_bindings(vhost, "test-queue")
    assert {(b["source"], b["routing_key"]) for b in bindings} == {
        ("", "test-queue"), ("test.events", "thing.*")}

    exchanges = {ex["name"]: ex for ex in rabbit_manager.get_exchanges(vhost)}
    assert exchanges["test.events"]["type"] == "topic"


@pytest.mark.integration
def test_publish_and_poll_message_count(rabbit_manager, vhost, connection):
    queue = kombu.Queue("inbox", durable=False)
    queue(connection.default_channel).declare()

    assert rabbit_manager.publish(vhost, "", "inbox", "hello") is True
    assert rabbit_manager.publish(vhost, "", "nowhere", "lost") is False

    wait_for(lambda: (rabbit_manager.get_queue(vhost, "inbox") or {}).get(
        "messages") == 1, timeout=API_LAG)


@pytest.mark.integration
def test_published_payloads_arrive_intact(rabbit_manager, vhost, connection):
    queue = kombu.Queue("inbox", durable=False)
    channel = connection.default_channel
    queue(channel).declare()

    rabbit_manager.publish(vhost, "", "inbox", "text",
                           properties={"content_type": "text/plain",
                                       "headers": {"h": 1}})
    rabbit_manager.publish(vhost, "", "inbox", b"\x00\xffbinary")
    rabbit_manager.publish(vhost, "", "inbox", {"args": [1], "kwargs": {}})

    bound = queue(channel)

    def next_message():
        return wait_for(lambda: bound.get(no_ack=True), timeout=10,
                        interval=0.05)

    text = next_message()
    assert text.body == b"text"
    assert text.content_type == "text/plain"
    assert text.headers == {"h": 1}
    assert next_message().body == b"\x00\xffbinary"
    as_json = next_message()
    assert as_json.content_type == "application/json"
    assert json.loads(as_json.body) == {"args": [1], "kwargs": {}}


@pytest.mark.integration
def test_connections_can_be_listed_and_killed(rabbit_manager, vhost,
                                              connection):
    def ours():
        return [c for c in rabbit_manager.get_connections()
                if c.get("vhost") == vhost]

    listed = wait_for(ours, timeout=API_LAG)
    assert len(listed) == 1
    rabbit_manager.delete_connection(listed[0]["name"])

    # The broker tells the client why; until the client reads that, the
    # connection stays listed as closing, so read it before polling.
    with pytest.raises(amqp.exceptions.ConnectionForced,
                       match="management plugin"):
        connection.drain_events(timeout=10)
    wait_for(lambda: not ours(), timeout=API_LAG)


@pytest.mark.integration
def test_consumer_count_is_polled(rabbit_manager, vhost, connection):
    queue = kombu.Queue("consumed", durable=False)
    channel = connection.channel()
    consumer = kombu.Consumer(channel, queues=[queue], accept=["json"])
    consumer.consume()
    try:
        wait_for(lambda: (rabbit_manager.get_queue(vhost, "consumed") or {})
                 .get("consumers") == 1, timeout=API_LAG)
    finally:
        consumer.cancel()
        channel.close()
