"""A handler that hogs the CPU past the heartbeat timeout runs once (issue 12 D).

Before, a CPU-bound handler running longer than 2x HEARTBEAT starved the
heartbeats: the broker dropped the connection, the message was redelivered,
ran again, and again (80 runs in 16 minutes). Heartbeats now go out from an
OS thread while the hub is stalled; and broker redeliveries are counted,
so such a message would be dead-lettered past MAX_REDELIVERIES anyway (see
test_channel_errors.test_an_oversized_reply_does_not_loop).
"""

from __future__ import annotations

import collections
import time

import pytest

from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.fault

HEARTBEAT = 2
HOG_SECONDS = 4 * HEARTBEAT


@pytest.mark.timeout(90)
def test_a_cpu_hog_keeps_its_connection(fault_config, spawn_service, wait_ready, records):
    config = dict(fault_config, HEARTBEAT=HEARTBEAT)
    service = spawn_service("fault_services:Hog", config)
    wait_ready(config, "fault_hog")
    started = time.monotonic()
    with ClusterRpcProxy(config, timeout=HOG_SECONDS * 4) as cluster:
        replies = [cluster.fault_hog.hog.call_async(f"h{n}", HOG_SECONDS) for n in range(2)]
        results = [reply.result() for reply in replies]
    elapsed = time.monotonic() - started
    time.sleep(2 * HEARTBEAT)  # a redelivery would show by now
    runs = collections.Counter(records.ids("hog"))
    log = service.log()
    lost = [line for line in log.splitlines() if "lost" in line or "reconnect" in line]
    print(f"2 calls holding the CPU {HOG_SECONDS}s each with HEARTBEAT={HEARTBEAT}: "
          f"runs {dict(runs)}, answered in {elapsed:.1f}s, connection lost {len(lost)} times")
    assert results == ["h0", "h1"]
    assert runs == {"h0": 1, "h1": 1}
    assert lost == []
    assert service.alive
