"""A channel error belongs to the publish that caused it (issue 12 A).

The broker closes a publisher's *channel* (not its connection) over a
publish to a missing exchange (404) or a message over its
``max_message_size`` (406). Before, the service treated that as a lost
connection: every other unconfirmed reply of the process failed, their
requests were requeued and ran again (267 duplicate runs in a 3,000-call
test), and an oversized reply made its method run ~1,000 times in 15 s.
"""

from __future__ import annotations

import collections
import time

import pytest
from amqp.exceptions import NotFound
from kombu import Connection

from nameko_like.exceptions import RemoteError, ResultTooLarge
from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.fault

SERVICE = "fault_services:ChannelFaults"
#: the private node's limit during the oversized-reply tests (RabbitMQ's default is 128 MiB)
MAX_MESSAGE_SIZE = 1024 * 1024
DEFAULT_MAX_MESSAGE_SIZE = 134217728


def _set_max_message_size(broker, size: int) -> None:
    # read by each channel when it opens: set before the service connects
    broker.rabbitmqctl("eval", f"application:set_env(rabbit, max_message_size, {size}).")


def _queue_depth(config: dict, queue: str) -> int:
    """Messages ready on ``queue``; 0 if it was never declared."""
    with Connection(config["AMQP_URI"]) as connection:
        try:
            return connection.channel().queue_declare(queue, passive=True).message_count
        except NotFound:
            return 0


def _lost_connection_lines(log: str) -> list[str]:
    return [line for line in log.splitlines()
            if ("connection to" in line and "lost" in line) or "reconnected" in line]


@pytest.mark.timeout(90)
def test_a_refused_publish_fails_alone(fault_config, spawn_service, wait_ready, records,
                                       wait_until):
    service = spawn_service(SERVICE, fault_config)
    wait_ready(fault_config, "fault_channel")
    calls, every = 1500, 50
    started = time.monotonic()
    with ClusterRpcProxy(fault_config, timeout=20) as cluster:
        replies = []
        for number in range(calls):
            method = cluster.fault_channel.misfire if number % every == 0 else \
                cluster.fault_channel.work
            replies.append((number, method.call_async(f"c{number}")))
        outcomes: dict[int, object] = {}
        for number, reply in replies:
            try:
                outcomes[number] = reply.result()
            except RemoteError as exc:
                outcomes[number] = exc
    elapsed = time.monotonic() - started

    works = collections.Counter(records.ids("work"))
    misfires = collections.Counter(records.ids("misfire"))
    duplicates = sum(count - 1 for count in works.values())
    refused = [value for value in outcomes.values() if isinstance(value, RemoteError)]
    print(f"{calls} calls ({calls // every} to a missing exchange) in {elapsed:.1f}s; "
          f"work runs {sum(works.values())}, duplicates {duplicates}; "
          f"misfire runs {sum(misfires.values())}; error replies {len(refused)}")

    assert service.alive
    # every plain call answered, and ran exactly once
    for number in range(calls):
        if number % every:
            assert outcomes[number] == f"c{number}"
    assert duplicates == 0
    assert set(works) == {f"c{n}" for n in range(calls) if n % every}
    # each refused publish failed its own call, once, with the broker's reason
    assert len(refused) == calls // every
    assert all(exc.exc_type == "PublishRefused" and "fault-missing-exchange" in str(exc)
               for exc in refused), refused[:3]
    assert all(count == 1 for count in misfires.values())
    # and the connection was never dropped over it
    assert _lost_connection_lines(service.log()) == []


@pytest.mark.timeout(90)
def test_an_oversized_reply_becomes_an_error_reply_and_never_loops(
        fault_broker, fault_config, spawn_service, wait_ready, records):
    config = dict(fault_config, MAX_REDELIVERIES=2)
    _set_max_message_size(fault_broker, MAX_MESSAGE_SIZE)
    try:
        service = spawn_service(SERVICE, config)
        wait_ready(config, "fault_channel")
        with ClusterRpcProxy(config, timeout=6) as cluster:
            started = time.monotonic()
            big = cluster.fault_channel.blob.call_async("big", 2 * MAX_MESSAGE_SIZE)
            small = [cluster.fault_channel.work.call_async(f"w{n}") for n in range(300)]
            assert [reply.result() for reply in small] == [f"w{n}" for n in range(300)]
            with pytest.raises(ResultTooLarge, match="max size 1048576"):
                big.result()
            answered_in = time.monotonic() - started
            time.sleep(2.0)  # the old loop ran ~70 times a second: long enough to see one
        blob_runs = len(records.ids("blob"))
        dead = _queue_depth(config, "fault_channel.dead-letter")
        works = collections.Counter(records.ids("work"))
        print(f"oversized reply: method ran {blob_runs} times, caller told in "
              f"{answered_in:.2f}s, dead-lettered {dead}; 300 small calls ran "
              f"{sum(works.values())} times")
        assert service.alive
        # the method ran once; its caller got ResultTooLarge and the request
        # was acknowledged: nothing to redeliver, nothing to move aside
        assert blob_runs == 1
        assert dead == 0
        assert _queue_depth(config, "rpc-fault_channel") == 0
        assert answered_in < 6
        assert all(count == 1 for count in works.values())
        assert _lost_connection_lines(service.log()) == []
    finally:
        _set_max_message_size(fault_broker, DEFAULT_MAX_MESSAGE_SIZE)
