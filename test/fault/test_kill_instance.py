"""``kill -9`` of one of two instances of a service under load (issue 8.3).

Both instances consume the same RPC queue and the same event queue. The
messages the killed instance had taken but not acknowledged go back to the
queues when its connection drops, and the survivor handles them.
"""

from __future__ import annotations

import collections
import time

import pytest

from nameko_like.standalone.events import event_dispatcher
from nameko_like.standalone.rpc import ClusterRpcProxy

pytestmark = pytest.mark.fault


def _start_two(fault_config, spawn_service, wait_ready):
    first = spawn_service("fault_services:Worker", fault_config)
    second = spawn_service("fault_services:Worker", fault_config)
    wait_ready(fault_config, "fault_worker", {first.pid, second.pid})
    return first, second


def _busy_pids(records, kind: str) -> set[int]:
    return {record.pid for record in records.read(kind)}


@pytest.mark.timeout(90)
def test_kill_9_under_rpc_load(fault_config, spawn_service, wait_ready, records, wait_until):
    first, second = _start_two(fault_config, spawn_service, wait_ready)
    proxy = ClusterRpcProxy(fault_config, timeout=15)
    try:
        cluster = proxy.start()
        replies = [cluster.fault_worker.slow.call_async(f"k{number}", 0.5) for number in range(20)]
        # all 20 calls are running, shared by the two instances
        wait_until(lambda: len(records.read("call")) == 20, timeout=5, interval=0.01,
                   message="all calls in flight")
        first.kill9()
        killed_at = time.monotonic()
        results = [reply.result() for reply in replies]
        finished_in = time.monotonic() - killed_at
    finally:
        proxy.stop()

    taken_by_victim = {record.id for record in records.read("call") if record.pid == first.pid}
    finished_by_victim = {record.id for record in records.read("done") if record.pid == first.pid}
    print(f"victim had {len(taken_by_victim)} calls in flight "
          f"({len(finished_by_victim)} finished); "
          f"all 20 results {finished_in:.2f}s after the kill")

    assert first.process.wait(timeout=5) == -9
    assert second.alive
    assert [result["id"] for result in results] == [f"k{number}" for number in range(20)]
    assert len(taken_by_victim) >= 5, "the killed instance had (almost) no calls in flight"
    # the calls the victim dropped were re-run by the survivor
    by_id = {result["id"]: result["pid"] for result in results}
    for call_id in taken_by_victim - finished_by_victim:
        assert by_id[call_id] == second.pid
    survivor_runs = collections.Counter(record.id for record in records.read("call")
                                        if record.pid == second.pid)
    assert all(count == 1 for count in survivor_runs.values())


@pytest.mark.timeout(90)
def test_kill_9_under_event_load(fault_config, spawn_service, wait_ready, records, wait_until):
    total = 200
    first, second = _start_two(fault_config, spawn_service, wait_ready)
    dispatch = event_dispatcher(fault_config)
    outcomes = [dispatch.dispatch_async("fault_source", "job", {"id": f"j{number}", "seconds": 0.1})
                for number in range(total)]
    for outcome in outcomes:
        dispatch.wait(outcome, timeout=10)
    wait_until(lambda: _busy_pids(records, "job") == {first.pid, second.pid}, timeout=5,
               interval=0.01, message="both instances busy")
    first.kill9()

    every_id = {f"j{number}" for number in range(total)}
    wait_until(lambda: every_id <= set(records.ids("jobdone")), timeout=30,
               message="every event handled to the end")
    done = records.ids("jobdone")
    started_by_victim = {record.id for record in records.read("job") if record.pid == first.pid}
    done_by_victim = {record.id for record in records.read("jobdone") if record.pid == first.pid}
    duplicates = sum(count - 1 for count in collections.Counter(done).values() if count > 1)
    print(f"victim started {len(started_by_victim)} events and finished {len(done_by_victim)}; "
          f"lost 0 of {total}; handled twice: {duplicates}")

    assert second.alive
    assert started_by_victim - done_by_victim, "the killed instance had no event in flight"
    # every event the victim dropped was handled by the survivor
    done_by_survivor = {record.id for record in records.read("jobdone") if record.pid == second.pid}
    assert started_by_victim - done_by_victim <= done_by_survivor
