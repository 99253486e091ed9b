"""Streaming RPC results (``@rpc(stream=True)``) on the real broker."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.exceptions import RemoteError, RpcTimeout
from nameko_like.rpc import RpcProxy, rpc
from nameko_like.rpc.streaming import STREAM_PREFETCH, StreamNotRequested
from nameko_like.standalone.rpc import ClusterRpcProxy
from nameko_like.testing.services import entrypoint_hook

pytestmark = pytest.mark.integration


class Source:
    name = "source"
    runs: list[str] = []
    #: items produced but not yet confirmed to the caller's side, at most
    produced = 0

    @rpc(stream=True)
    def count(self, n: int, size: int = 0) -> Iterator[dict]:
        Source.runs.append("count")
        for i in range(n):
            Source.produced = i + 1
            yield {"i": i, "pad": "x" * size}

    @rpc(stream=True)
    def fail_after(self, n: int) -> Iterator[int]:
        yield from range(n)
        raise ValueError(f"failed after {n}")

    @rpc(stream=True)
    def slow(self, n: int, pause: float) -> Iterator[int]:
        for i in range(n):
            eventlet.sleep(pause)
            yield i

    @rpc
    def single(self) -> int:
        return 1


class Gateway:
    name = "gateway"
    source = RpcProxy("source")

    @rpc
    def total(self, n: int) -> int:
        return sum(item["i"] for item in self.source.count.stream(n))

    @rpc
    def until_failure(self, n: int) -> dict:
        seen = []
        try:
            for item in self.source.fail_after.stream(n):
                seen.append(item)
        except RemoteError as exc:
            return {"seen": seen, "error": exc.value}
        return {"seen": seen, "error": None}


@pytest.fixture
def source(container_factory, rabbit_config):
    Source.runs = []
    container = container_factory(Source, rabbit_config)
    container.start()
    return container


def test_items_arrive_in_order_standalone(source, rabbit_config):
    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        stream = cluster.source.count.stream(250)
        assert [item["i"] for item in stream] == list(range(250))
        assert list(stream) == []  # an ended stream stays ended
        assert list(cluster.source.count.stream(0)) == []


def test_items_arrive_through_rpc_proxy(source, container_factory, rabbit_config):
    gateway = container_factory(Gateway, rabbit_config)
    gateway.start()
    with entrypoint_hook(gateway, "total") as total:
        assert total(300) == sum(range(300))
    with entrypoint_hook(gateway, "until_failure") as until_failure:
        assert until_failure(3) == {"seen": [0, 1, 2], "error": "failed after 3"}


def test_error_midway_raised_after_the_items_before_it(source, rabbit_config):
    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        stream = cluster.source.fail_after.stream(5)
        seen = []
        with pytest.raises(RemoteError) as raised:
            for item in stream:
                seen.append(item)
        assert seen == [0, 1, 2, 3, 4]
        assert (raised.value.exc_type, raised.value.value) == ("ValueError", "failed after 5")
        # the proxy still works after it
        assert cluster.source.single() == 1


def test_timeout_applies_between_items(source, rabbit_config):
    with ClusterRpcProxy(rabbit_config, timeout=0.6) as cluster:
        started = time.monotonic()
        # 8 x 0.15 s = 1.2 s in all, twice the timeout, but no gap reaches it
        assert list(cluster.source.slow.stream(8, 0.15)) == list(range(8))
        assert time.monotonic() - started >= 1.2
        stream = cluster.source.slow.stream(3, 1.5)
        started = time.monotonic()
        with pytest.raises(RpcTimeout):
            next(stream)
        assert 0.5 < time.monotonic() - started < 1.2
        # items of the abandoned stream are dropped, later calls unaffected
        assert cluster.source.single() == 1


def test_plain_call_of_a_streaming_method_fails_at_once(source, rabbit_config):
    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        started = time.monotonic()
        with pytest.raises(RemoteError) as raised:
            cluster.source.count(3)
        assert time.monotonic() - started < 2
    assert raised.value.exc_type == StreamNotRequested.__name__
    assert "source.count.stream(" in raised.value.value
    assert Source.runs == []  # the method never ran


def test_stream_of_a_plain_method_is_a_clear_error(source, rabbit_config):
    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        with pytest.raises(TypeError, match="does not stream"):
            list(cluster.source.single.stream())


def test_retry_cannot_combine_with_stream():
    from nameko_like.retries import Retry

    with pytest.raises(TypeError, match="stream=True"):
        class Bad:
            name = "bad"

            @rpc(stream=True, retry=Retry(ValueError))
            def method(self):
                yield 1


def test_ten_thousand_items_with_bounded_memory(source, rabbit_config):
    """Service and caller share this process: the peak of what it holds must
    stay far below the stream's total size (10,000 x ~1 kB = ~10 MB), even
    when the caller pauses and the service runs thousands of items ahead."""
    n, size = 10_000, 1000
    with ClusterRpcProxy(rabbit_config, timeout=10) as cluster:
        list(cluster.source.count.stream(10))  # connections and queues set up
        tracemalloc.start()
        try:
            stream = cluster.source.count.stream(n, size)
            assert next(stream)["i"] == 0
            # A slow caller: pause until the service is thousands of items
            # ahead (how long that takes depends on the machine's load), so
            # the backlog waits in the broker.
            deadline = time.monotonic() + 60
            while Source.produced <= 2000 and time.monotonic() < deadline:
                eventlet.sleep(0.05)
            ahead_after_pause = Source.produced - 1
            buffered_after_pause = stream.buffered
            received = 1
            max_buffered = buffered_after_pause
            for item in stream:
                assert item["i"] == received
                received += 1
                max_buffered = max(max_buffered, stream.buffered)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    print(f"peak {peak / 1e6:.2f} MB; service ahead by {ahead_after_pause} after the pause; "
          f"caller held <= {max_buffered}")
    assert received == n
    assert ahead_after_pause > 2000  # the pause did build a backlog...
    assert max_buffered <= STREAM_PREFETCH  # ...that the caller never held
    assert peak < 3e6, peak


def test_observers_see_a_stream_as_one_call(source, rabbit_config):
    from nameko_like import instrumentation

    class Calls(instrumentation.Observer):
        def __init__(self):
            self.seen = []

        def rpc_call_sent(self, service_name, method_name):
            self.seen.append(("sent", method_name))

        def rpc_call_replied(self, service_name, method_name, duration):
            self.seen.append(("replied", method_name))

        def rpc_call_timed_out(self, service_name, method_name):
            self.seen.append(("timed_out", method_name))

    calls = Calls()
    instrumentation.register(calls)
    try:
        with ClusterRpcProxy(rabbit_config, timeout=0.5) as cluster:
            assert len(list(cluster.source.count.stream(120))) == 120
            with pytest.raises(RpcTimeout):
                list(cluster.source.slow.stream(2, 2))
    finally:
        instrumentation.unregister(calls)
    assert calls.seen == [("sent", "count"), ("replied", "count"),
                          ("sent", "slow"), ("timed_out", "slow")]
