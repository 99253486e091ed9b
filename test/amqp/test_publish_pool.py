"""Publish connections belong to an owner that closes them: a runner, a
container run alone, a standalone dispatcher. Nothing stays connected (nor
any reader greenthread running) once the owner has stopped."""

import gc

import pytest

from nameko_like.amqp.outcome import PublishOutcome
from nameko_like.events import EventDispatcher, event_handler
from nameko_like.exceptions import DeliveryError, PublishConfirmTimeout, RpcTimeout
from nameko_like.rpc import rpc
from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.services import entrypoint_hook
from nameko_like.testing.waiting import wait_for_call

pytestmark = pytest.mark.integration


class Sender:
    name = "sender"
    dispatch = EventDispatcher()

    @rpc
    def send(self, value):
        self.dispatch("sent", value)
        return value


class Receiver:
    name = "receiver"
    seen: list = []

    @event_handler("sender", "sent")
    def on_sent(self, value):
        Receiver.seen.append(value)


def open_channels(pool):
    return [channel for channel in pool.channels if channel._connection is not None]


def test_container_alone_closes_its_publish_connection(container_factory, rabbit_config):
    container = container_factory(Sender, rabbit_config)
    container.start()
    with entrypoint_hook(container, "send") as send:
        assert send(1) == 1
    pool = container.publish_pool
    channels = open_channels(pool)
    assert len(channels) == 1
    container.stop()
    assert channels[0].closed and channels[0]._connection is None
    assert pool.channels == []


def test_runner_shares_one_pool_and_closes_it(runner_factory, rabbit_config):
    Receiver.seen = []
    runner = runner_factory(rabbit_config, Sender, Receiver)
    runner.start()
    assert {id(container.publish_pool) for container in runner.containers} == {
        id(runner.publish_pool)}
    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        with wait_for_call(Receiver, "on_sent"):
            assert cluster.sender.send("x") == "x"
    channels = open_channels(runner.publish_pool)
    # replies and events of both services went through one connection
    assert len(channels) == 1
    runner.stop()
    assert channels[0].closed and channels[0]._connection is None


def test_standalone_dispatcher_closes_its_connection(rabbit_config):
    with event_dispatcher(rabbit_config) as dispatch:
        dispatch("sender", "sent", 1)
        channel = dispatch.publisher.channel
        assert channel._connection is not None
    assert channel.closed and channel._connection is None


def test_collected_standalone_dispatcher_closes_its_connection(rabbit_config):
    dispatch = event_dispatcher(rabbit_config)
    dispatch("sender", "sent", 1)
    channel = dispatch.publisher.channel
    del dispatch
    gc.collect()
    # closed from the hub where a reader greenthread reads it
    from nameko_like._eventlet import eventlet

    for _ in range(50):
        if channel.closed:
            break
        eventlet.sleep(0.01)
    assert channel.closed and channel._connection is None


def test_confirm_time_out_is_a_delivery_error_not_an_rpc_timeout():
    with pytest.raises(PublishConfirmTimeout) as raised:
        PublishOutcome().wait(timeout=0.01)
    assert isinstance(raised.value, DeliveryError)
    assert isinstance(raised.value, TimeoutError)
    assert not isinstance(raised.value, RpcTimeout)


def test_blocked_broker_wakes_publishers_waiting_without_a_timer():
    """Publishers waiting for confirms with no timer (``wait_or_wake``) are
    woken, unsettled, when the broker blocks publishing, so they can start
    counting their deadline; a settled outcome wakes them too."""
    from nameko_like._eventlet import eventlet
    from nameko_like.amqp.channel_errors import SentPublish
    from nameko_like.amqp.confirms import ConfirmTracker

    tracker = ConfirmTracker()
    outcomes = [tracker.sent(SentPublish(None, "ex", "key", False)) for _ in range(3)]
    woken = []

    def wait(outcome):
        outcome.wait_or_wake()
        woken.append(outcome.settled)

    threads = [eventlet.spawn(wait, outcome) for outcome in outcomes]
    eventlet.sleep(0)
    assert woken == []
    tracker.on_ack(1, multiple=False)
    eventlet.sleep(0)
    assert woken == [True]
    tracker.wake_all()  # as PublishConnection does on connection.blocked
    for thread in threads:
        thread.wait()
    assert woken == [True, False, False]
    tracker.on_ack(3, multiple=True)
    assert all(outcome.settled for outcome in outcomes)
