"""The shared, pipelined-confirm publish connection against RabbitMQ: many
publishes in flight, each settled with its own message's fate."""

import re

import pytest
from kombu import Connection, Exchange, Queue

from nameko_like.amqp import Publisher
from nameko_like.amqp.retry import PublishNacked
from nameko_like.exceptions import UndeliverableMessage

pytestmark = pytest.mark.integration

EXCHANGE = Exchange("pipeline", type="topic", durable=True)
KEPT = Queue("kept", exchange=EXCHANGE, routing_key="kept.*", durable=True)
#: takes one message; the broker nacks publishes beyond that
FULL = Queue("full", exchange=EXCHANGE, routing_key="full.*", durable=True,
             queue_arguments={"x-max-length": 1, "x-overflow": "reject-publish"})


def ready_count(config, queue_name):
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.default_channel
        _name, count, _consumers = channel.queue_declare(queue_name, passive=True)
    return count


def test_many_publishes_in_flight_all_confirmed(rabbit_config):
    publisher = Publisher(config=rabbit_config, declare=[KEPT])
    outcomes = [publisher.publish_async(n, exchange="pipeline", routing_key="kept.n")
                for n in range(2000)]
    for outcome in outcomes:
        publisher.channel.wait(outcome, timeout=10)
    assert all(outcome.settled and outcome.error is None for outcome in outcomes)
    assert ready_count(rabbit_config, "kept") == 2000


def test_mandatory_returns_match_their_own_publishes(rabbit_config, management):
    # routable and unroutable publishes interleaved on one pipelined channel
    publisher = Publisher(config=rabbit_config, declare=[KEPT], mandatory=True)
    outcomes = []
    for number in range(30):
        key = "kept.ok" if number % 3 else "void.key"
        outcomes.append((key, publisher.publish_async(number, exchange="pipeline",
                                                      routing_key=key)))
    for key, outcome in outcomes:
        if key == "void.key":
            with pytest.raises(UndeliverableMessage, match=r"void\.key"):
                publisher.channel.wait(outcome, timeout=5)
        else:
            publisher.channel.wait(outcome, timeout=5)
    kept = [int(m["payload"]) for m in management.peek("kept", count=50)]
    assert kept == [n for n in range(30) if n % 3]


def test_broker_nack_fails_only_the_refused_publish(rabbit_config):
    publisher = Publisher(config=rabbit_config, declare=[FULL, KEPT])
    publisher.publish("fits", exchange="pipeline", routing_key="full.a")
    # a nack is not a return (unroutable): a delivery error of its own, and
    # with no retry it is not sent again
    with pytest.raises(PublishNacked, match=r"basic\.nack\) 1 time\(s\)"):
        publisher.publish("refused", exchange="pipeline", routing_key="full.b", retry=False)
    # the connection carries on
    publisher.publish("after", exchange="pipeline", routing_key="kept.a")
    assert ready_count(rabbit_config, "full") == 1
    assert ready_count(rabbit_config, "kept") == 1


def test_concurrent_publishers_each_get_their_own_fate(rabbit_config):
    """60 greenthreads publish 240 messages at once through one pipelined channel, each
    waiting for its confirm: a returned (unroutable) or nacked (full queue)
    message fails its own publisher only, and every other one returns."""
    from nameko_like._eventlet import eventlet
    from nameko_like.amqp.publish_pool import PublishPool

    pool = PublishPool()
    # nacked publishes are sent again every 0.5 s for 0.1 + 2 s
    publisher = Publisher(config=rabbit_config, declare=[FULL, KEPT], mandatory=True,
                          pool=pool, retry_policy={"max_retries": 1, "interval_start": 0.1})
    publisher.publish("fits", exchange="pipeline", routing_key="full.first")
    assert publisher.channel.has_reader  # confirms read by a greenthread, waits on events
    routes = {0: "kept.ok", 1: "void.key", 2: "full.more"}
    in_flight = []

    def publish(number):
        key = routes[number % 3] if number % 2 else "kept.ok"
        try:
            publisher.publish({"n": number}, exchange="pipeline", routing_key=key)
        except (UndeliverableMessage, PublishNacked) as exc:
            return number, key, f"{type(exc).__name__}: {exc}"
        finally:
            in_flight.append(len(publisher.channel._confirms._pending))
        return number, key, None

    fates = list(eventlet.GreenPool(60).imap(publish, range(240)))
    pool.close()

    for number, key, error in fates:
        if key == "void.key":
            assert error is not None and "UndeliverableMessage" in error, number
            assert "void.key" in error, number
        elif key == "full.more":
            # refused on each of its attempts (0.5 s apart within 2.1 s)
            assert error is not None and "PublishNacked" in error, number
            attempts = int(re.search(r"(\d+) time\(s\)", error).group(1))
            assert 2 <= attempts <= 5, (number, error)
        else:
            assert error is None, (number, error)
    # the waits overlapped: confirms were shared, not one round trip each
    assert max(in_flight) > 10
    kept = sum(1 for _, key, _ in fates if key == "kept.ok")
    assert ready_count(rabbit_config, "kept") == kept
    assert ready_count(rabbit_config, "full") == 1


def test_large_concurrent_publishes_arrive_intact(rabbit_config):
    # Bodies bigger than a frame are written in several pieces and batched
    # with other greenthreads' frames: every message must still arrive
    # whole (the broker closes the connection on a garbled frame).
    import hashlib

    from nameko_like._eventlet import eventlet

    publisher = Publisher(config=rabbit_config, declare=[KEPT], serializer="json")
    payloads = [f"{n:04d}" + "x" * 300_000 for n in range(60)]

    def publish_some(start):
        outcomes = [publisher.publish_async(payloads[n], exchange="pipeline",
                                            routing_key="kept.big")
                    for n in range(start, start + 6)]
        for outcome in outcomes:
            publisher.channel.wait(outcome, timeout=30)

    pool = eventlet.GreenPool(10)
    list(pool.imap(publish_some, range(0, 60, 6)))

    received = []
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        channel = connection.default_channel
        for _ in range(60):
            message = channel.basic_get("kept", no_ack=True)
            assert message is not None
            body = message.body if isinstance(message.body, bytes) else message.body.encode()
            received.append(hashlib.sha1(body).hexdigest())
    expected = sorted(hashlib.sha1(f'"{p}"'.encode()).hexdigest() for p in payloads)
    assert sorted(received) == expected


def test_settled_mandatory_publishes_are_not_kept(rabbit_config):
    # one mandatory publish per RPC request: confirmed ones must not pile up
    publisher = Publisher(config=rabbit_config, declare=[KEPT], mandatory=True)
    outcomes = [publisher.publish_async(n, exchange="pipeline",
                                        routing_key="kept.ok" if n % 5 else "void.key")
                for n in range(1000)]
    for outcome in outcomes:
        if outcome.route == ("pipeline", "void.key"):
            with pytest.raises(UndeliverableMessage):
                publisher.channel.wait(outcome, timeout=10)
        else:
            publisher.channel.wait(outcome, timeout=10)
    assert publisher.channel._confirms.watching_returns == 0
    assert ready_count(rabbit_config, "kept") == 800


def test_connection_keys_cache_stays_bounded(rabbit_config):
    from nameko_like.amqp import publish_pool

    pool = publish_pool.PublishPool()
    channels = {pool.get(dict(rabbit_config)) for _ in range(5000)}
    # one connection for one broker, and a bounded memory of config dicts
    assert len(channels) == 1
    assert len(pool._keys) <= publish_pool._KEYS_CACHE_SIZE
    pool.close()
    assert pool.channels == []
    assert all(channel.closed for channel in channels)


FORK_SCRIPT = """
import os, sys, json
from nameko_like._eventlet import eventlet
eventlet.monkey_patch()
from nameko_like.amqp.publish_pool import PublishPool
from nameko_like.worker_context import unique_id

config = {"AMQP_URI": sys.argv[1]}
pool = PublishPool()
parent_channel = pool.get(config)
parent_channel.wait(parent_channel.publish("parent-before", routing_key="kept"), 10)
reader, writer = os.pipe()
pid = os.fork()
if pid == 0:
    child_channel = pool.get(config)
    child_channel.wait(child_channel.publish("child", routing_key="kept"), 10)
    os.write(writer, json.dumps({"id": unique_id(),
                                 "same_channel": child_channel is parent_channel}).encode())
    os._exit(0)
os.waitpid(pid, 0)
child = json.loads(os.read(reader, 4096))
parent_channel.wait(parent_channel.publish("parent-after", routing_key="kept"), 10)
print(json.dumps({"child": child, "parent_id": unique_id()}))
"""


def test_forked_child_gets_its_own_connection_and_ids(rabbit_config, tmp_path):
    import json
    import subprocess
    import sys

    with Connection(rabbit_config["AMQP_URI"]) as connection:
        KEPT(connection.default_channel).declare()
    script = tmp_path / "fork.py"
    script.write_text(FORK_SCRIPT)
    done = subprocess.run([sys.executable, str(script), rabbit_config["AMQP_URI"]],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["child"]["same_channel"] is False
    assert result["child"]["id"] != result["parent_id"]
    # the parent's connection was not disturbed by the child: all 3 arrived
    assert ready_count(rabbit_config, "kept") == 3


def test_a_loss_a_publisher_sees_takes_the_old_reader_with_it(rabbit_config):
    # A declare or write that fails with a connection error drops the
    # connection from the publishing side; the reader still blocked on the
    # old socket must go too, or it (and its heartbeats) outlive everything.
    from nameko_like._eventlet import eventlet
    from nameko_like.amqp.publish_pool import PublishPool

    pool = PublishPool()
    publisher = Publisher(config=rabbit_config, declare=[KEPT], pool=pool)
    try:
        publisher.publish("first", exchange="pipeline", routing_key="kept.first")
        channel = publisher.channel
        old_reader = channel._reader
        assert old_reader is not None and not old_reader.dead
        with channel._lock:
            channel._lost(ConnectionResetError("as a failed publish reports it"))
        eventlet.sleep(0)
        assert old_reader.dead
        publisher.publish("second", exchange="pipeline", routing_key="kept.second")
        assert channel._reader is not None and channel._reader is not old_reader
        assert ready_count(rabbit_config, "kept") == 2
    finally:
        pool.close()
