"""SIGTERM to ``nameko_like run`` with calls in flight (issue 8.6).

The first SIGTERM stops gracefully: no new work is taken, running workers
get ``SHUTDOWN_GRACE_PERIOD`` seconds to finish, and the process exits 0.
A worker still running after the grace period is killed without
acknowledging its message, so the broker gives the call to another instance.
"""

from __future__ import annotations

import time

import pytest

from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.fault

SERVICE = "fault_slowpoke"


@pytest.mark.timeout(60)
def test_sigterm_lets_calls_in_flight_finish(fault_config, spawn_service, wait_ready, records,
                                             wait_until):
    config = dict(fault_config, SHUTDOWN_GRACE_PERIOD=10)
    service = spawn_service("fault_services:Slowpoke", config)
    wait_ready(config, SERVICE)
    proxy = ClusterRpcProxy(config, timeout=15)
    try:
        cluster = proxy.start()
        replies = [cluster[SERVICE].nap.call_async(f"g{number}", 1.0) for number in range(5)]
        wait_until(lambda: len(records.read("start")) == 5, timeout=5, interval=0.01,
                   message="all five calls running")
        service.terminate()
        signalled = time.monotonic()
        results = [reply.result() for reply in replies]
        answered_in = time.monotonic() - signalled
        exit_code = service.wait(timeout=15)
        exited_in = time.monotonic() - signalled
    finally:
        proxy.stop()
    print(f"5/5 results {answered_in:.2f}s after SIGTERM; exit {exit_code} after {exited_in:.2f}s")

    assert [result["id"] for result in results] == [f"g{number}" for number in range(5)]
    assert {result["pid"] for result in results} == {service.pid}
    assert exit_code == 0
    assert exited_in < 1.0 + 3.0  # the calls' remaining second, plus shutting down


@pytest.mark.timeout(60)
def test_call_outlasting_the_grace_period_is_requeued(fault_config, spawn_service, wait_ready,
                                                      records, wait_until):
    config = dict(fault_config, SHUTDOWN_GRACE_PERIOD=1)
    first = spawn_service("fault_services:Slowpoke", config)
    wait_ready(config, SERVICE)
    proxy = ClusterRpcProxy(config, timeout=30)
    try:
        cluster = proxy.start()
        reply = cluster[SERVICE].nap.call_async("long", 4.0)
        wait_until(lambda: records.ids("start") == ["long"], timeout=5, interval=0.01,
                   message="the long call running")
        first.terminate()
        signalled = time.monotonic()
        exit_code = first.wait(timeout=20)
        exited_in = time.monotonic() - signalled
        assert not reply.ready, "the killed call must not have been answered"
        second = spawn_service("fault_services:Slowpoke", config)
        result = reply.result()
    finally:
        proxy.stop()
    starts = [(record.id, record.pid) for record in records.read("start")]
    print(f"exit {exit_code} {exited_in:.2f}s after SIGTERM (grace 1s); "
          f"the call was then answered by the second instance; runs: {starts}")

    assert exit_code == 0
    assert 1.0 <= exited_in < 1.0 + 1.5
    assert records.ids("done") == ["long"]
    assert result == {"id": "long", "pid": second.pid}
    assert starts == [("long", first.pid), ("long", second.pid)]
