"""``@timer(cron=..., once_per_tick=True)`` with three real service processes.

Exactly one of the three fires each tick (the leader of the lock queue);
after ``kill -9`` of the leader, the broker hands the lead to another
instance and the following ticks again fire exactly once.
"""

from __future__ import annotations

import collections
import time

import pytest

pytestmark = pytest.mark.fault

#: cron_services.TICK_SECONDS (the service processes import that module, not this test)
TICK_SECONDS = 2
#: Ticks watched before and after the kill.
TICKS = 6


def _ticks(records, since: float, until: float) -> dict[int, list[int]]:
    """tick second -> pids that fired it, for the ticks strictly between since and until."""
    fired = collections.defaultdict(list)
    for record in records.read("tick"):
        if since < int(record.id) < until:
            fired[int(record.id)].append(record.pid)
    return fired


def _expected(since: float, until: float) -> list[int]:
    """The ticks strictly between since and until (the same window as ``_ticks``)."""
    first = int(since // TICK_SECONDS + 1) * TICK_SECONDS
    return [tick for tick in range(first, int(until) + 1, TICK_SECONDS) if since < tick < until]


def _window_end() -> float:
    """Now, less half a tick: the last tick counted fired at least that long ago."""
    return time.time() - TICK_SECONDS / 2


@pytest.mark.timeout(120)
def test_one_fire_per_tick_across_three_instances_and_after_kill_9_of_the_leader(
        fault_config, spawn_service, wait_ready, records, wait_until):
    processes = [spawn_service("cron_services:CronLeader", fault_config) for _ in range(3)]
    wait_ready(fault_config, "fault_cron", {process.pid for process in processes})

    ready = time.time()
    time.sleep(TICKS * TICK_SECONDS + 0.5)
    until = _window_end()
    before = _ticks(records, ready, until)
    expected = _expected(ready, until)
    print(f"before the kill: {len(before)} of {len(expected)} ticks fired, by "
          f"{collections.Counter(pid for pids in before.values() for pid in pids)}")
    assert sorted(before) == expected
    assert all(len(pids) == 1 for pids in before.values()), before
    leaders = {pids[0] for pids in before.values()}
    assert len(leaders) == 1
    (leader,) = leaders

    # kill the leader half-way between two ticks
    time.sleep(TICK_SECONDS - time.time() % TICK_SECONDS + TICK_SECONDS / 2)
    victim = next(process for process in processes if process.pid == leader)
    victim.kill9()
    killed = time.time()
    assert victim.wait(timeout=5) == -9

    time.sleep(TICKS * TICK_SECONDS + 0.5)
    until = _window_end()
    after = _ticks(records, killed, until)
    expected = _expected(killed, until)
    firsts = [record.time for record in records.read("tick") if record.time > killed]
    print(f"after the kill: {len(after)} of {len(expected)} ticks fired, by "
          f"{collections.Counter(pid for pids in after.values() for pid in pids)}; first "
          f"fire {min(firsts) - killed:.2f}s after the kill")
    assert sorted(after) == expected
    assert all(len(pids) == 1 for pids in after.values()), after
    new_leaders = {pids[0] for pids in after.values()}
    assert len(new_leaders) == 1
    assert new_leaders <= {process.pid for process in processes} - {leader}
    # over the whole run, no tick ever fired twice
    everything = collections.Counter(records.ids("tick"))
    assert max(everything.values()) == 1, everything
