"""Publishers ride through a broker restart; alarms don't block them for ever (issue 12 C).

Before, during a broker restart a standalone ``event_dispatcher`` raised at
once for every dispatch ("it failed 0.0s ago"): most events sent during the
outage raised, where Nameko's dispatch waited (its retry policy) and
succeeded. Consumers could wait several seconds of back-off after the broker
was back, and a publish during a memory alarm waited for ever.
"""

from __future__ import annotations

import collections
import time

import pytest

from nameko_like._eventlet import eventlet
from nameko_like.amqp.retry import retry_seconds

pytestmark = pytest.mark.fault

RATE = 50.0
#: Seconds between stop_app's return and start_app (the node stops in ~1.5 s here).
OUTAGE = 3.5


@pytest.mark.timeout(90)
def test_dispatch_waits_through_a_restart(fault_broker, fault_config, spawn_service, wait_ready,
                                          records, wait_until, dispatcher):
    spawn_service("fault_services:Listener", fault_config)
    wait_ready(fault_config, "fault_listener")
    dispatch = dispatcher(fault_config)
    budget = retry_seconds(True, None)
    times: dict[str, float] = {}

    def restart() -> None:
        times["stop_issued"] = time.monotonic()
        fault_broker.stop_app()
        time.sleep(OUTAGE)
        fault_broker.start_app()
        times["start_done"] = time.monotonic()
        times["start_done_wall"] = time.time()

    dispatched: list[str] = []
    raised: collections.Counter = collections.Counter()
    durations: list[tuple[float, float]] = []
    restarter = None
    number = 0
    started = time.monotonic()
    while "start_done" not in times or time.monotonic() < times["start_done"] + 2.0:
        if restarter is None and time.monotonic() - started > 1.0:
            restarter = eventlet.spawn(restart)
        event_id = f"e{number}"
        number += 1
        before = time.monotonic()
        try:
            dispatch("fault_source", "tick", {"id": event_id})
        except Exception as exc:  # noqa: BLE001 - counted: a raise promised nothing
            raised[type(exc).__name__] += 1
        else:
            dispatched.append(event_id)
        durations.append((before, time.monotonic() - before))
        time.sleep(1 / RATE)
        assert time.monotonic() - started < 60, "the restart did not finish"
    restarter.wait()

    wait_until(lambda: set(dispatched) <= set(records.ids("event")), timeout=30,
               message="every dispatched event handled")
    handled = records.read("event")
    during = [d for d in durations if times["stop_issued"] <= d[0] <= times["start_done"]]
    slowest = max(duration for _, duration in durations)
    after = [r.time for r in handled if r.time >= times["start_done_wall"]]
    resumed = min(after) - times["start_done_wall"]
    ids = [r.id for r in handled]
    duplicates = sum(c - 1 for c in collections.Counter(ids).values() if c > 1)
    print(f"{number} dispatches, {len(during)} started during the restart "
          f"(stop_app..start_app {times['start_done'] - times['stop_issued']:.1f}s); "
          f"raised {dict(raised)}; slowest {slowest:.2f}s (policy {budget:.1f}s); "
          f"lost 0; duplicates {duplicates}; first event handled {resumed:.2f}s after start_app")

    assert sum(raised.values()) <= 1
    assert slowest <= budget + 1.0
    assert resumed <= 1.0


@pytest.mark.timeout(60)
def test_a_blocked_publish_raises_within_its_timeout(fault_broker, fault_config, dispatcher):
    dispatch = dispatcher(fault_config)
    dispatch("fault_source", "tick", {"id": "before"})  # connected, not blocked
    fault_broker.rabbitmqctl("set_vm_memory_high_watermark", "0.0000001")
    try:
        time.sleep(1.0)  # the alarm reaches the connections
        before = time.monotonic()
        with pytest.raises(ConnectionError) as info:
            dispatch("fault_source", "tick", {"id": "blocked"}, timeout=2.0)
        waited = time.monotonic() - before
        print(f"blocked publish raised after {waited:.2f}s: {info.value}")
        assert waited <= 3.0
        assert "alarm" in str(info.value)
        # without a timeout: the retry policy's time, never for ever
        budget = retry_seconds(True, None)
        before = time.monotonic()
        with eventlet.Timeout(budget + 5.0), pytest.raises(ConnectionError):
            dispatch("fault_source", "tick", {"id": "blocked-no-timeout"})
        waited = time.monotonic() - before
        print(f"blocked publish without a timeout raised after {waited:.2f}s "
              f"(policy {budget:.1f}s)")
        assert waited <= budget + 1.0
    finally:
        fault_broker.rabbitmqctl("set_vm_memory_high_watermark", "0.4")
    time.sleep(1.0)
    before = time.monotonic()
    dispatch("fault_source", "tick", {"id": "after"}, timeout=5.0)
    print(f"after the alarm cleared, a publish took {time.monotonic() - before:.2f}s")
