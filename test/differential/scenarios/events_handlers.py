"""nameko.events: SERVICE_POOL / SINGLETON / BROADCAST handlers, dispatched from a
service's EventDispatcher and from the standalone dispatcher.

The broker topology (queue names, flags, bindings) is compared by the test.
"""

import time

import eventlet
from _side import config, module, outcome, run_main

events = module("events")
rpc = module("rpc")
runners = module("runners")
containers = module("containers")
standalone_rpc = module("standalone.rpc")
standalone_events = module("standalone.events")

RECEIVED = []


class Source:
    name = "src"
    dispatch = events.EventDispatcher()

    @rpc.rpc
    def emit(self, event_type, data):
        self.dispatch(event_type, data)


class Pool:
    name = "pool"

    @events.event_handler("src", "ping")
    def handle(self, data):
        RECEIVED.append(["pool", data])


class Single:
    name = "single"

    @events.event_handler("src", "ping", handler_type=events.SINGLETON)
    def handle(self, data):
        RECEIVED.append(["single", data])


class Broadcast:
    name = "bcast"

    @events.event_handler("src", "ping", handler_type=events.BROADCAST,
                          reliable_delivery=False)
    def handle(self, data):
        RECEIVED.append(["bcast", data])


class FixedBroadcastHandler(events.EventHandler):
    """BROADCAST with a stable identifier, so it may be reliable."""

    @property
    def broadcast_identifier(self):
        return "fixed"


class ReliableBroadcast:
    name = "bcast_fixed"

    @FixedBroadcastHandler.decorator("src", "ping", handler_type=events.BROADCAST)
    def handle(self, data):
        RECEIVED.append(["bcast_fixed", data])


class OtherType:
    name = "other"

    @events.event_handler("src", "pong")
    def handle(self, data):
        RECEIVED.append(["other", data])


class BadBroadcast:
    name = "bad_bcast"

    @events.event_handler("src", "ping", handler_type=events.BROADCAST)
    def handle(self, data):
        pass


def bad_broadcast():
    """Where the default identifier with reliable delivery is refused."""
    steps = {}
    try:
        container = containers.ServiceContainer(BadBroadcast, config())
    except Exception as exc:  # noqa: BLE001 - the observation
        steps["construct"] = type(exc).__name__
        return steps
    steps["construct"] = "ok"
    try:
        container.start()
    except Exception as exc:  # noqa: BLE001 - the observation
        steps["start"] = type(exc).__name__
    else:
        steps["start"] = "ok"
    container.kill()
    return steps


def wait_for(count, timeout=10):
    deadline = time.monotonic() + timeout
    while len(RECEIVED) < count and time.monotonic() < deadline:
        eventlet.sleep(0.02)
    eventlet.sleep(0.2)  # anything extra would arrive now


def main():
    bad = bad_broadcast()
    runner = runners.ServiceRunner(config())
    for service in (Source, Pool, Single, Broadcast, ReliableBroadcast, OtherType):
        runner.add_service(service)
    runner.start()
    try:
        with standalone_rpc.ClusterRpcProxy(config(), timeout=10) as cluster:
            emitted = outcome(cluster.src.emit, "ping", {"n": 1})
        wait_for(4)
        from_service = sorted(RECEIVED)
        del RECEIVED[:]
        dispatch = standalone_events.event_dispatcher(config())
        dispatched = outcome(dispatch, "src", "ping", "standalone")
        wait_for(4)
        from_standalone = sorted(RECEIVED)
        del RECEIVED[:]
        dispatch("src", "pong", [1, 2])
        wait_for(1)
        other = sorted(RECEIVED)
    finally:
        runner.stop()
    handler_types = {name: getattr(events, name) for name in ("SERVICE_POOL", "SINGLETON",
                                                               "BROADCAST")}
    return {
        "handler_types": handler_types,
        "bad_broadcast": bad,
        "emitted": emitted,
        "dispatched": dispatched,
        "from_service": from_service,
        "from_standalone": from_standalone,
        "other_type": other,
    }


run_main(main)
