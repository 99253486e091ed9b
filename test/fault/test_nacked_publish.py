"""A publish the broker refuses (``basic.nack``) is retried, not "unknown service".

After a cluster node loss RabbitMQ nacks publishes to the quorum queues led
from it for ~10 s (no ``basic.return``). Before, a nacked RPC request raised
``UnknownService`` at once for a service that exists, and a nacked event
raised ``UndeliverableMessage``. The same nack is made here without a
cluster: a policy puts the service's queue at ``max-length`` 0 with
``overflow: reject-publish``, so the broker nacks every publish routed to it.
A second, ordinary queue bound to the same route (a tap) gets a copy of
every attempt, which counts them on the broker's side.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from urllib.parse import unquote, urlsplit

import amqp
import pytest
from amqp.exceptions import MessageNacked
from kombu import Connection

from nameko_like.amqp.retry import PublishNacked
from nameko_like.exceptions import (
    DeliveryError,
    RemoteError,
    RpcConnectionError,
    UndeliverableMessage,
    UnknownService,
)
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.fault

POLICY = "fault-block"
#: the backend's RPC queue, an event queue of ours and a probe queue
BLOCKED = "^(rpc-fault_backend|blocked_evt|blocked_probe)$"
EVENT_EXCHANGE, EVENT_TYPE = "fault_source.events", "tick"


def _vhost(config: dict) -> str:
    return unquote(urlsplit(config["AMQP_URI"]).path[1:])


def _probe_nacked(config: dict) -> bool:
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.default_channel
        channel.confirm_select()
        try:
            channel.basic_publish_confirm(amqp.Message(b"probe"), exchange="",
                                          routing_key="blocked_probe")
        except MessageNacked:
            return True
        channel.queue_purge("blocked_probe")
        return False


def _block(broker, config: dict, wait_until, on: bool) -> None:
    vhost = _vhost(config)
    if on:
        broker.rabbitmqctl("set_policy", "-p", vhost, "--apply-to", "queues", POLICY, BLOCKED,
                           json.dumps({"max-length": 0, "overflow": "reject-publish"}))
        wait_until(lambda: _probe_nacked(config), 20)
    else:
        broker.rabbitmqctl("clear_policy", "-p", vhost, POLICY)
        wait_until(lambda: not _probe_nacked(config), 20)


def _declare(config: dict) -> None:
    """The tap queues, the blocked event queue and the probe queue."""
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.default_channel
        channel.exchange_declare(EVENT_EXCHANGE, "topic", durable=True, auto_delete=False)
        for queue in ("blocked_evt", "blocked_probe", "tap_rpc", "tap_evt"):
            channel.queue_declare(queue, durable=True, auto_delete=False)
        channel.queue_bind("tap_rpc", "nameko-rpc", "fault_backend.work")
        channel.queue_bind("tap_evt", EVENT_EXCHANGE, EVENT_TYPE)
        channel.queue_bind("blocked_evt", EVENT_EXCHANGE, EVENT_TYPE)


def _take(config: dict, queue: str) -> list:
    """Drain ``queue``: the bodies of its messages, decoded."""
    bodies = []
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.default_channel
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            bodies.append(json.loads(message.body))
    return bodies


@pytest.mark.timeout(180)
def test_nacked_publishes_are_retried_within_their_policy(
        fault_broker, fault_config, spawn_service, wait_ready, records, wait_until):
    backend = spawn_service("fault_services:Backend", fault_config)
    frontend = spawn_service("fault_services:Frontend", fault_config)
    wait_ready(fault_config, "fault_backend")
    wait_ready(fault_config, "fault_frontend")
    _declare(fault_config)

    with ClusterRpcProxy(fault_config, timeout=20) as cluster:
        # an unroutable request is still an unknown service, at once
        started = time.monotonic()
        with pytest.raises(UnknownService):
            cluster.fault_nobody.work("x")
        unknown_seconds = time.monotonic() - started

        _block(fault_broker, fault_config, wait_until, on=True)

        # 1. the policy is spent: a clear delivery error, after several
        # attempts. Three publishers at once: a plain call (the caller's
        # reads resend), a call inside a service (a reader greenthread
        # resends; the frontend's RpcProxy has timeout 4 s) and an event.
        spent: dict[str, tuple[BaseException | None, float]] = {}

        def attempt(name, function):
            started = time.monotonic()
            try:
                function()
            except Exception as exc:  # noqa: BLE001 - asserted below
                spent[name] = (exc, time.monotonic() - started)
            else:
                spent[name] = (None, time.monotonic() - started)

        def plain_call():
            with ClusterRpcProxy(fault_config, timeout=3) as short:
                short.fault_backend.work("plain-spent")

        def event():
            policy = {"max_retries": 2, "interval_start": 0.5, "interval_step": 0,
                      "interval_max": 0.5}  # 1 s + 2 s for connecting: 3 s
            with event_dispatcher(fault_config, retry_policy=policy) as dispatch:
                dispatch("fault_source", EVENT_TYPE, {"id": "event-spent"})

        threads = [threading.Thread(target=attempt, args=("plain", plain_call)),
                   threading.Thread(target=attempt, args=("event", event))]
        for thread in threads:
            thread.start()
        attempt("green", lambda: cluster.fault_frontend.relay("green-spent"))
        for thread in threads:
            thread.join(20)
        (plain_error, plain_seconds), (green_error, green_seconds), (event_error,
         event_seconds) = spent["plain"], spent["green"], spent["event"]
        rpc_attempts = collections.Counter(body["args"][0]
                                           for body in _take(fault_config, "tap_rpc"))
        plain_attempts, green_attempts = rpc_attempts["plain-spent"], rpc_attempts["green-spent"]
        event_attempts = [body["id"] for body in _take(fault_config, "tap_evt")]

        # 2. the refusal passes within the policy (the plain call: its
        # 20 s timeout): delivered once
        plain_reply = cluster.fault_backend.work.call_async("plain-ok")
        green_reply = cluster.fault_frontend.relay.call_async("green-ok")
        event_errors: list[BaseException] = []

        def dispatch_one() -> None:
            try:
                # a policy of 10 s, to ride through the policy change
                with event_dispatcher(fault_config, retry_policy={"max_retries": 8}) as dispatch:
                    dispatch("fault_source", EVENT_TYPE, {"id": "event-ok"})
            except BaseException as exc:  # noqa: BLE001 - reported by the assert below
                event_errors.append(exc)

        dispatcher = threading.Thread(target=dispatch_one)
        dispatcher.start()
        # the relayed call has the frontend's 4 s: lift the refusal soon
        time.sleep(0.5)
        _block(fault_broker, fault_config, wait_until, on=False)
        plain_result = plain_reply.result()
        green_result = green_reply.result()
        dispatcher.join(10)
        recovered_rpc = _take(fault_config, "tap_rpc")
        recovered_events = [body["id"] for body in _take(fault_config, "tap_evt")]
        taken_events = [body["id"] for body in _take(fault_config, "blocked_evt")]

    backend_runs = records.ids("backend")
    print(f"unknown service raised in {unknown_seconds:.2f}s; spent: plain call "
          f"{plain_attempts} attempts in {plain_seconds:.1f}s, in-service call "
          f"{green_attempts} in {green_seconds:.1f}s, event {len(event_attempts)} in "
          f"{event_seconds:.1f}s; recovered: {len(recovered_rpc)} rpc attempts, "
          f"{len(recovered_events)} event attempts; backend runs {backend_runs}")

    assert unknown_seconds < 2.0
    # errors the caller can tell from UnknownService, saying why
    assert isinstance(plain_error, RpcConnectionError)
    assert not isinstance(plain_error, UnknownService)
    assert isinstance(green_error, RemoteError)
    assert green_error.exc_type == "RpcConnectionError"
    assert isinstance(event_error, PublishNacked) and isinstance(event_error, DeliveryError)
    assert not isinstance(event_error, UndeliverableMessage)
    for error in (plain_error, green_error, event_error):
        assert "basic.nack" in str(error)
    # sent every 0.5 s until the deadline left no room for another: the
    # broker got each attempt (the tap's copies), the error counts them
    assert set(rpc_attempts) == {"plain-spent", "green-spent"}
    assert 4 <= plain_attempts <= 6
    assert f"{plain_attempts} time(s)" in str(plain_error)
    assert plain_seconds < 3.0 + 1.5
    assert 5 <= green_attempts <= 8
    assert f"{green_attempts} time(s)" in str(green_error)
    assert set(event_attempts) == {"event-spent"}
    assert 4 <= len(event_attempts) <= 6
    assert f"{len(event_attempts)} time(s)" in str(event_error)
    assert event_seconds < 3.0 + 1.5

    assert plain_result["id"] == "plain-ok"
    assert green_result["id"] == "green-ok"
    assert event_errors == []
    # refused at least once, then taken; each ran (was queued) exactly once
    assert sum(body["args"][0] == "plain-ok" for body in recovered_rpc) >= 2
    assert sum(body["args"][0] == "green-ok" for body in recovered_rpc) >= 2
    assert recovered_events.count("event-ok") >= 2
    assert taken_events == ["event-ok"]
    assert sorted(backend_runs) == ["green-ok", "plain-ok"]
    assert backend.alive and frontend.alive
