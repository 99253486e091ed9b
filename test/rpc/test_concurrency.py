"""Concurrent RPC calls are served ``max_workers`` at a time, on both backends."""

import time

from nameko_like._eventlet import eventlet
from nameko_like.rpc import rpc
from nameko_like.standalone.rpc import ClusterRpcProxy


class Sleeper:
    name = "sleeper"
    running = 0
    peak = 0

    @rpc
    def nap(self, value):
        Sleeper.running += 1
        Sleeper.peak = max(Sleeper.peak, Sleeper.running)
        try:
            eventlet.sleep(0.5)
        finally:
            Sleeper.running -= 1
        return value


def test_twenty_calls_on_ten_workers_take_two_call_durations(container_factory, backend):
    Sleeper.running = Sleeper.peak = 0
    container_factory(Sleeper, dict(backend, max_workers=10)).start()

    with ClusterRpcProxy(backend, timeout=10) as cluster:
        cluster.sleeper.nap("warm up")  # connect before timing
        started = time.monotonic()
        replies = [cluster.sleeper.nap.call_async(i) for i in range(20)]
        results = [reply.result() for reply in replies]
        elapsed = time.monotonic() - started

    assert results == list(range(20))
    assert Sleeper.peak == 10
    assert 0.9 < elapsed < 2.5, elapsed
